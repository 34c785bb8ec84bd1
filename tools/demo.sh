#!/usr/bin/env bash
# mmkd's demo; sets up the environment first if needed.
#   bash tools/demo.sh [tools/demo.py args...]
set -eo pipefail
cd "$(dirname "$0")/.."
# one training process at a time: busy-waiting OpenMP threads are ~20 %
# faster here (the test suite, which runs processes side by side, keeps
# PASSIVE)
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-ACTIVE}"
source tools/setup_env.sh
python tools/demo.py "$@"
