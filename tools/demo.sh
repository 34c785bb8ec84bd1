#!/usr/bin/env bash
# mmkd's demo; sets up the environment first if needed.
#   bash tools/demo.sh [tools/demo.py args...]
set -eo pipefail
cd "$(dirname "$0")/.."
source tools/setup_env.sh
python tools/demo.py "$@"
