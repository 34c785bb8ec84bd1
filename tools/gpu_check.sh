#!/usr/bin/env bash
# Check mmkd on a CUDA machine and print one summary table:
#   1. set up the environment (tools/setup_env.sh builds mmcv's CUDA ops when
#      nvcc and a GPU are present) and print torch / CUDA / mmcv versions;
#   2. mmcv's CUDA kernels: nms and RoIAlign on cuda tensors against the CPU;
#   3. the CUDA-only tests (`pytest -k cuda`: they have "cuda" in their name
#      and skip without a GPU);
#   4. tools/analysis_tools/benchmark_distill.py --device cuda for the pairs it
#      knows (retinanet, gfl, pspnet, beit);
#   5. a short --amp KD + deep-supervision run on the demo detection set with
#      a bf16 teacher (random teacher weights: it checks that it runs).
#
#   bash tools/gpu_check.sh [OUT_DIR]     (default: work_dirs/gpu_check)
#
# Exits 2 at once without a CUDA device, 1 if any step failed.
set -uo pipefail
cd "$(dirname "$0")/.."

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "[gpu check] error: no CUDA device here (nvidia-smi finds no GPU)." \
       "Run tools/gpu_check.sh on a machine with an NVIDIA GPU and its driver." >&2
  exit 2
fi
OUT=$(mkdir -p "${1:-work_dirs/gpu_check}" && cd "${1:-work_dirs/gpu_check}" && pwd)
source tools/setup_env.sh || { echo "[gpu check] error: environment set-up failed" >&2; exit 1; }
set +e  # (setup_env.sh sets -e) a failed step is a row of the table

ROWS=()
FAILED=0
# step NAME LOG COMMAND...: run, keep the log, add a summary row
step() {
  local name=$1 log="$OUT/$2"; shift 2
  echo "[gpu check] $name: $*"
  local t0=$SECONDS
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local detail; detail=$(grep -E "$DETAIL" "$log" | tail -n "${DETAIL_LINES:-1}" | tr -s ' \n' ' ')
  [ "$rc" -eq 0 ] || { FAILED=1; [ -n "$detail" ] || detail=$(grep -v '^\s*$' "$log" | tail -n 1); }
  ROWS+=("$(printf '%-24.24s %-5s %5ss  %s' "$name" "$([ "$rc" -eq 0 ] && echo ok || echo FAIL)" \
             $((SECONDS - t0)) "${detail:0:120}")")
}

DETAIL='^(torch|mmcv|ops)' DETAIL_LINES=3 step 'mmcv CUDA ops' ops.log python - <<'EOF'
import sys
import torch
import mmcv
from mmcv.ops import RoIAlign, get_compiling_cuda_version, nms
assert torch.cuda.is_available(), 'torch sees no CUDA device'
print(f'torch {torch.__version__} (CUDA {torch.version.cuda}) on '
      f'{torch.cuda.get_device_name()}')
print(f'mmcv {mmcv.__version__}, ops compiled with CUDA '
      f'{get_compiling_cuda_version()}')
if get_compiling_cuda_version() == 'not available':
    sys.exit(f'mmcv in {sys.prefix} has CPU ops only: with nvcc on PATH, '
             f'remove {sys.prefix}/.mmkd-ready and run this again (set-up '
             'then builds the CUDA ops)')
g = torch.Generator().manual_seed(0)
xy = torch.rand(200, 2, generator=g) * 100
boxes = torch.cat([xy, xy + 10 + torch.rand(200, 2, generator=g) * 40], 1)
scores = torch.rand(200, generator=g)
_, keep_cpu = nms(boxes, scores, 0.5)
_, keep_gpu = nms(boxes.cuda(), scores.cuda(), 0.5)
feats = torch.rand(2, 8, 32, 32, generator=g)
rois = torch.tensor([[0, 1., 1., 20., 20.], [1, 4., 2., 30., 17.]])
align = RoIAlign((7, 7), 1.0, sampling_ratio=2, aligned=True)
diff = (align(feats, rois) - align(feats.cuda(), rois.cuda()).cpu()).abs().max()
same = torch.equal(keep_cpu, keep_gpu.cpu()) and diff < 1e-4
print(f'ops on cuda: nms keeps {len(keep_gpu)} boxes '
      f'({"same as" if torch.equal(keep_cpu, keep_gpu.cpu()) else "NOT"} cpu), '
      f'RoIAlign max |cuda - cpu| = {diff:.2e}')
sys.exit(0 if same else 1)
EOF

DETAIL='(passed|failed|error|skipped|deselected)' step 'CUDA-only tests' tests.log \
  python -m pytest tests -q -k cuda -p no:cacheprovider

DETAIL='(MISS|Error)' step 'benchmark --device cuda' bench.log \
  python tools/analysis_tools/benchmark_distill.py --device cuda \
    --task retinanet gfl pspnet beit --steps 5 --warmup 2 --json "$OUT/bench.json"
# one row per benchmarked pair: the student's step and each row's ratio to it
bench_rows() {
  python - "$OUT/bench.json" <<'EOF'
import json, sys
for res in json.load(open(sys.argv[1]))['results']:
    rows = res['rows']
    ratios = ' '.join(f'{k} x{v["ratio"]:.2f}' for k, v in rows.items()
                      if k != 'student')
    print(f'{"  " + res["title"]:24.24s} {"":5s} {"":6s}  student '
          f'{rows["student"]["median_ms"]:.0f} ms; {ratios}')
EOF
}
if [ -f "$OUT/bench.json" ]; then
  while IFS= read -r row; do ROWS+=("$row"); done < <(bench_rows)
fi

demo="$OUT/demo"
amp_run() {
  python tools/make_demo_data.py --out "$demo" --scale 0.1 --only coco || return 1
  local coco="$demo/coco/" ann="$demo/coco/annotations/instances_val2017.json"
  python tools/train.py configs/demo/retinanet_r18-w32-to-w16_kd-ds_demo-coco.py \
    --amp --work-dir "$OUT/amp_kd_ds" --cfg-options \
    model.teacher_ckpt=None model.teacher_precision=bf16 \
    train_dataloader.dataset.data_root="$coco" val_dataloader.dataset.data_root="$coco" \
    test_dataloader.dataset.data_root="$coco" val_evaluator.ann_file="$ann" \
    test_evaluator.ann_file="$ann" train_cfg.max_iters=20 train_cfg.val_interval=20 \
    default_hooks.checkpoint.interval=20 default_hooks.logger.interval=5
}
DETAIL='(loss_kd|bbox_mAP)' step 'train --amp KD+DS bf16' amp.log amp_run

echo
echo "[gpu check] summary ($(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)); logs in $OUT"
printf '%-24s %-5s %6s  %s\n' step result time detail
printf '%s\n' "${ROWS[@]}"
exit "$FAILED"
