"""mmkd demo on generated data, through the same tools a user runs.

1. generate the demo data sets under ``data/demo`` (reused when present),
2. train a small RetinaNet from scratch with ``tools/train.py``,
3. evaluate it with ``tools/test.py`` (mmdet's CocoMetric) and print the
   COCO metrics.
"""
import argparse
import glob
import json
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

DET_CONFIG = 'configs/demo/retinanet_r18-w32_fpn_demo-coco.py'


def sh(cmd) -> None:
    print('+ ' + ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def train(config: str, work_dir: str, cfg_options=()) -> str:
    """Train with tools/train.py; return the final checkpoint's path."""
    cmd = [sys.executable, 'tools/train.py', config, '--work-dir', work_dir]
    if cfg_options:
        cmd += ['--cfg-options', *cfg_options]
    sh(cmd)
    with open(osp.join(ROOT, work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def evaluate(config: str, checkpoint: str, work_dir: str) -> dict:
    """Evaluate with tools/test.py; return the metrics it logged."""
    sh([sys.executable, 'tools/test.py', config, checkpoint, '--work-dir',
        work_dir])
    logs = sorted(glob.glob(osp.join(ROOT, work_dir, '*', '*.json')),
                  key=osp.getmtime)
    with open(logs[-1]) as f:
        return json.load(f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    args = parser.parse_args()

    from mmkd.datasets.demo_data import make_all_demo_data
    start = time.time()
    make_all_demo_data(osp.join(ROOT, 'data', 'demo'))

    work = osp.join(args.work_dir, 'retinanet_r18-w32')
    ckpt = train(DET_CONFIG, work)
    metrics = evaluate(DET_CONFIG, ckpt, work)

    print(f'\n== mmkd demo: {osp.basename(DET_CONFIG)}, '
          f'{time.time() - start:.0f} s in all ==')
    for key in ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75', 'bbox_mAP_s',
                'bbox_mAP_m', 'bbox_mAP_l'):
        print(f'{key:>12}: {metrics[f"coco/{key}"]:.3f}')
    print(f'checkpoint: {ckpt}')


if __name__ == '__main__':
    main()
