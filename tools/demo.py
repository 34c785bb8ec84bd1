"""mmkd demo on generated data, through the same tools a user runs.

1. generate the demo data sets under ``data/demo`` (reused when present);
2. for detection (RetinaNet, demo COCO set), segmentation (FCN, demo
   ADE20K-layout set) and classification (timm ResNet-18, demo
   ImageNet-layout set) in turn:
   a. train the teacher from scratch (``tools/train.py``);
   b. train the student alone for its schedule (the baseline);
   c. distil the teacher into the same student with vanilla KD + multi-level
      deep supervision (for classification also with vanilla KD alone), same
      schedule and seed;
   d. print the metrics side by side: teacher and baseline from the
      validation at the end of their training, each distilled student from
      ``tools/test.py`` on its student-only export with the plain student
      config, as a user would deploy it.
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
TASKS = [
    dict(
        title='detection: RetinaNet on the demo COCO set (val, 100 images)',
        teacher=('retinanet_r18-w32', 'R18-w32, 300 it'),
        student=('retinanet_r18-w16', 'R18-w16, 200 it'),
        config='{}_fpn_demo-coco.py',
        distill=[('retinanet_r18-w32-to-w16_kd-ds_demo-coco.py',
                  'KD + deep supervision')],
        metrics=('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75'),
        scale=1.0),
    dict(
        title='segmentation: FCN on the demo ADE20K-layout set (val, 60 '
        'images)',
        teacher=('fcn_r18-w32-d8', 'R18-w32-d8, 300 it'),
        student=('fcn_r18-w16-d8', 'R18-w16-d8, 200 it'),
        config='{}_demo-ade.py',
        distill=[('fcn_r18-w32-to-w16_kd-ds_demo-ade.py',
                  'KD + deep supervision')],
        metrics=('mIoU', 'mAcc', 'aAcc'),
        scale=1.0),  # mmseg reports percentages
    dict(
        title='classification: timm ResNet-18 on the demo ImageNet-layout '
        'set (val, 150 images)',
        teacher=('resnet18-w32', 'ResNet-18-w32, 300 it'),
        student=('resnet18-w16', 'ResNet-18-w16, 200 it'),
        config='{}_demo-in1k.py',
        distill=[('resnet18-w32-to-w16_kd_demo-in1k.py', 'KD'),
                 ('resnet18-w32-to-w16_kd-ds_demo-in1k.py',
                  'KD + deep supervision')],
        metrics=('accuracy/top1', ),
        scale=1.0),
]


def sh(cmd) -> None:
    print('+ ' + ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def train(config: str, work_dir: str, reuse: bool, cfg_options=(),
          validated: bool = True) -> tuple:
    """Train with tools/train.py; return the final checkpoint's path and the
    metrics of the validation run at the end of training (None when
    ``validated`` is False)."""
    last = osp.join(ROOT, work_dir, 'last_checkpoint')
    if not (reuse and osp.isfile(last)):
        cmd = [sys.executable, 'tools/train.py', config, '--work-dir',
               work_dir]
        if cfg_options:
            cmd += ['--cfg-options', *cfg_options]
        sh(cmd)
    with open(last) as f:
        ckpt = f.read().strip()
    if not validated:
        return ckpt, None
    logs = glob.glob(osp.join(ROOT, work_dir, '*', 'vis_data', '*.json'))
    with open(max(logs, key=osp.getmtime)) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return ckpt, [r for r in records if 'loss' not in r][-1]


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


def run_task(task: dict, wd: str, reuse: bool) -> list:
    """Teacher, baseline and distilled students of one task, evaluated.

    Teacher and baseline are reported from the validation at the end of
    their training; each distilled student is evaluated again from its
    student-only export with the plain student config, as it is deployed.
    """
    (t_name, t_label), (s_name, s_label) = task['teacher'], task['student']
    t_cfg = DEMO + task['config'].format(t_name)
    s_cfg = DEMO + task['config'].format(s_name)
    t_ckpt, t_metrics = train(t_cfg, f'{wd}/{t_name}', reuse)
    _, s_metrics = train(s_cfg, f'{wd}/{s_name}', reuse)
    rows = [(f'teacher  {t_label}', t_metrics),
            (f'student  {s_label}, no teacher', s_metrics)]
    for config, label in task['distill']:
        kd_dir = f'{wd}/{config[:-3]}'
        # no validation inside this run: the export is evaluated below
        options = [f'model.teacher_ckpt={t_ckpt}', 'val_cfg=None',
                   'val_dataloader=None', 'val_evaluator=None']
        train(DEMO + config, kd_dir, reuse, options, validated=False)
        rows.append((f'student  {s_label}, {label}',
                     evaluate(
                         osp.join(kd_dir, 'student_config.py'),
                         osp.join(kd_dir, 'student_final.pth'), kd_dir)))
    return rows


def report(task: dict, rows: list) -> None:
    keys, scale = task['metrics'], task['scale']
    print(f'\n{task["title"]}')
    print(f'{"model":<52}' + ''.join(f'{k.split("/")[-1]:>13}' for k in keys))
    for name, metrics in rows:
        print(f'{name:<52}' +
              ''.join(f'{metrics[k] * scale:>13.3f}' for k in keys))
    for name, metrics in rows[2:]:
        gain = (metrics[keys[0]] - rows[1][1][keys[0]]) * scale
        print(f'gain of {name.rsplit(", ", 1)[1]}: {gain:+.3f} '
              f'{keys[0].split("/")[-1]} (one seed)')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument(
        '--reuse',
        action='store_true',
        help='reuse finished runs found in the work dir instead of '
        'training again')
    parser.add_argument(
        '--tasks',
        nargs='+',
        default=['detection', 'segmentation', 'classification'],
        choices=['detection', 'segmentation', 'classification'])
    args = parser.parse_args()
    start = time.time()

    from mmkd.datasets.demo_data import make_all_demo_data
    make_all_demo_data(osp.join(ROOT, 'data', 'demo'))
    results = [(task, run_task(task, args.work_dir, args.reuse))
               for task in TASKS if task['title'].split(':')[0] in args.tasks]
    print(f'\n== mmkd demo: {time.time() - start:.0f} s in all ==')
    for task, rows in results:
        report(task, rows)


if __name__ == '__main__':
    main()
