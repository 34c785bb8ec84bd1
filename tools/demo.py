"""mmkd demo on generated data, through the same tools a user runs.

1. generate the demo data sets under ``data/demo`` (reused when present);
2. train the teacher, RetinaNet R18-w32, from scratch (``tools/train.py``);
3. train the student, RetinaNet R18-w16, alone for its schedule (baseline);
4. distil the teacher into the same student with vanilla KD + multi-level
   deep supervision, same schedule and seed;
5. evaluate all three with ``tools/test.py`` (mmdet's CocoMetric) — the
   distilled student from its student-only export and the plain student
   config, as a user would deploy it — and print the COCO mAPs side by side.
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

DEMO = 'configs/demo/'
TEACHER = DEMO + 'retinanet_r18-w32_fpn_demo-coco.py'
STUDENT = DEMO + 'retinanet_r18-w16_fpn_demo-coco.py'
DISTILL = DEMO + 'retinanet_r18-w32-to-w16_kd-ds_demo-coco.py'


def sh(cmd) -> None:
    print('+ ' + ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def train(config: str, work_dir: str, reuse: bool, cfg_options=()) -> str:
    """Train with tools/train.py; return the final checkpoint's path."""
    last = osp.join(ROOT, work_dir, 'last_checkpoint')
    if not (reuse and osp.isfile(last)):
        cmd = [sys.executable, 'tools/train.py', config, '--work-dir',
               work_dir]
        if cfg_options:
            cmd += ['--cfg-options', *cfg_options]
        sh(cmd)
    with open(last) as f:
        return f.read().strip()


def evaluate(config: str, checkpoint: str, work_dir: str) -> dict:
    """Evaluate with tools/test.py; return the metrics it logged."""
    start = time.time()
    sh([sys.executable, 'tools/test.py', config, checkpoint, '--work-dir',
        work_dir])
    logs = [
        p for p in glob.glob(osp.join(ROOT, work_dir, '*', '*.json'))
        if osp.getmtime(p) >= start
    ]
    with open(max(logs, key=osp.getmtime)) as f:
        return json.load(f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument(
        '--reuse',
        action='store_true',
        help='reuse finished runs found in the work dir instead of '
        'training again')
    args = parser.parse_args()
    start = time.time()

    from mmkd.datasets.demo_data import make_all_demo_data
    make_all_demo_data(osp.join(ROOT, 'data', 'demo'))

    wd = args.work_dir
    teacher_ckpt = train(TEACHER, f'{wd}/retinanet_r18-w32', args.reuse)
    base_ckpt = train(STUDENT, f'{wd}/retinanet_r18-w16', args.reuse)
    kd_dir = f'{wd}/retinanet_r18-w32-to-w16_kd-ds'
    train(DISTILL, kd_dir, args.reuse, [f'model.teacher_ckpt={teacher_ckpt}'])

    rows = [
        ('teacher  R18-w32, 400 it', evaluate(TEACHER, teacher_ckpt,
                                              f'{wd}/retinanet_r18-w32')),
        ('student  R18-w16, 300 it, no teacher',
         evaluate(STUDENT, base_ckpt, f'{wd}/retinanet_r18-w16')),
        ('student  R18-w16, 300 it, KD + deep supervision',
         evaluate(
             osp.join(kd_dir, 'student_config.py'),
             osp.join(kd_dir, 'student_final.pth'), kd_dir)),
    ]
    keys = ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75')
    print(f'\n== mmkd demo: RetinaNet on the demo COCO set (val, 100 images), '
          f'{time.time() - start:.0f} s in all ==')
    print(f'{"model":<50}' + ''.join(f'{k:>13}' for k in keys))
    for name, metrics in rows:
        print(f'{name:<50}' +
              ''.join(f'{metrics[f"coco/{k}"]:>13.3f}' for k in keys))
    gain = (rows[2][1]['coco/bbox_mAP'] - rows[1][1]['coco/bbox_mAP'])
    print(f'distillation gain: {100 * gain:+.1f} mAP points (one seed)')


if __name__ == '__main__':
    main()
