#!/usr/bin/env bash
# Set up (or reuse) mmkd's Python environment. Idempotent; prints what it does.
#
#   source tools/setup_env.sh     # sets up if needed, then activates the venv
#
# Layout (outside the repository, so fresh clones reuse it):
#   $MMKD_HOME/venv-<key>/                         the virtual environment
#   $MMKD_HOME/wheels/mmcv-2.1.0-torch<v>-<flavour>/  the built mmcv wheel
# MMKD_HOME defaults to ~/.cache/mmkd.  The venv key hashes requirements/*.txt,
# so editing a pin makes a new environment.
set -eo pipefail

_mmkd_say() { echo "[mmkd setup] $*"; }

MMKD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MMKD_HOME="${MMKD_HOME:-$HOME/.cache/mmkd}"
MMCV_VERSION=2.1.0
PY="${MMKD_PYTHON:-$(command -v python3.11 || true)}"
if [ -z "$PY" ]; then
  echo "[mmkd setup] error: python3.11 not found (set MMKD_PYTHON to a Python 3.11 interpreter)" >&2
  return 1 2>/dev/null || exit 1
fi

# Bump MMKD_ENV_REVISION when this script changes what it installs.
MMKD_ENV_REVISION=1
_key=$( (echo "$MMKD_ENV_REVISION"; cat "$MMKD_ROOT"/requirements/*.txt) | sha1sum | cut -c1-10)
MMKD_VENV="${MMKD_VENV:-$MMKD_HOME/venv-py311-$_key}"

_mmkd_setup() {
  [ -f "$MMKD_VENV/.mmkd-ready" ] && return 0
  mkdir -p "$MMKD_HOME"
  # An interrupted set-up leaves no .mmkd-ready; rerunning finishes it (pip is idempotent).
  if [ ! -x "$MMKD_VENV/bin/python" ]; then
    _mmkd_say "creating virtual environment $MMKD_VENV"
    rm -rf "$MMKD_VENV"
    "$PY" -m venv "$MMKD_VENV"
  fi
  local venv="$MMKD_VENV"
  # (set -e does not apply inside a function called from `||`: every step checks itself)
  _pip() { "$venv/bin/python" -m pip "$@" 2> >(grep -v 'is ignored: it is neither a file' >&2); }
  _mmkd_say "installing torch, torchvision and build tools"
  # one command, so torch's setuptools>=77 requirement cannot lift setuptools past 82
  _pip install -q "setuptools<82" wheel ninja psutil torch==2.14.1 torchvision==0.29.1 || return 1

  local tv flavour
  tv=$("$venv/bin/python" -c 'import torch; print(torch.__version__.split("+")[0])')
  if command -v nvcc >/dev/null 2>&1 && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    flavour="cu$("$venv/bin/python" -c 'import torch; print((torch.version.cuda or "none").replace(".", ""))')"
  else
    flavour=cpu
  fi
  local wdir="$MMKD_HOME/wheels/mmcv-$MMCV_VERSION-torch$tv-$flavour"
  if ! ls "$wdir"/mmcv-*.whl >/dev/null 2>&1; then
    _mmkd_say "building mmcv $MMCV_VERSION ($flavour ops) for torch $tv from source; ~10 min on 2 cores"
    local tmp; tmp=$(mktemp -d)
    # --no-build-isolation: the sdist's metadata step needs pkg_resources (setuptools<82)
    _pip download -q --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VERSION" -d "$tmp" || return 1
    tar -xzf "$tmp"/mmcv-$MMCV_VERSION.tar.gz -C "$tmp" || return 1
    # torch >= 2.10 headers need C++20; mmcv 2.1.0's setup.py asks for C++17.
    sed -i 's/-std=c++17/-std=c++20/g; s/\/std:c++17/\/std:c++20/g' "$tmp/mmcv-$MMCV_VERSION/setup.py"
    local force=0; [ "$flavour" != cpu ] && force=1
    (cd "$tmp/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 FORCE_CUDA=$force MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
       "$venv/bin/python" -m pip wheel --no-build-isolation --no-deps -w "$tmp/dist" . 2>&1 \
       | tee "$tmp/build.log" | grep -E --line-buffered '^(Building|Created|Successfully|ERROR|error)' || true)
    if ! ls "$tmp"/dist/mmcv-*.whl >/dev/null 2>&1; then
      echo "[mmkd setup] error: mmcv build failed; log: $tmp/build.log" >&2
      tail -30 "$tmp/build.log" >&2
      return 1
    fi
    mkdir -p "$wdir.partial" && cp "$tmp"/dist/mmcv-*.whl "$wdir.partial/" && rm -rf "$wdir" && mv "$wdir.partial" "$wdir"
    rm -rf "$tmp"
    _mmkd_say "cached mmcv wheel in $wdir"
  else
    _mmkd_say "using cached mmcv wheel from $wdir"
  fi
  _pip install -q "$wdir"/mmcv-*.whl || return 1
  _mmkd_say "installing mmengine, mmdet, mmsegmentation, timm, pycocotools, test tools"
  _pip install -q -r "$MMKD_ROOT/requirements/runtime.txt" -r "$MMKD_ROOT/requirements/tests.txt" || return 1
  # opencv-python needs libGL; fall back to the headless build where it is missing.
  if ! "$venv/bin/python" -c 'import cv2' >/dev/null 2>&1; then
    _mmkd_say "cv2 does not import (no libGL?); switching to opencv-python-headless"
    _pip uninstall -q -y opencv-python
    _pip install -q opencv-python-headless
  fi
  "$venv/bin/python" -c 'import mmcv, mmcv.ops, mmdet, mmseg, timm, pycocotools; print("[mmkd setup] ok: torch", __import__("torch").__version__, "mmcv", mmcv.__version__, "mmdet", mmdet.__version__, "mmseg", mmseg.__version__, "timm", timm.__version__)' || return 1
  touch "$MMKD_VENV/.mmkd-ready"
}

_mmkd_setup || { return 1 2>/dev/null || exit 1; }
# shellcheck disable=SC1091
source "$MMKD_VENV/bin/activate"
export PYTHONPATH="$MMKD_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
# mmengine/mmcv import pkg_resources (setuptools < 82 pinned for it): hush its notice
export PYTHONWARNINGS="${PYTHONWARNINGS:+$PYTHONWARNINGS,}ignore:pkg_resources is deprecated:UserWarning"
_mmkd_say "environment ready: $MMKD_VENV"
