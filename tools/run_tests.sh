#!/usr/bin/env bash
# Run mmkd's test suite; sets up the environment first if needed.
#   bash tools/run_tests.sh [pytest args...]
set -eo pipefail
cd "$(dirname "$0")/.."
source tools/setup_env.sh
python -m pytest tests "$@"
