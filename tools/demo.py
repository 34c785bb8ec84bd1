"""mmkd demo on generated data, through the same tools a user runs.

1. generate the demo data sets under ``data/demo`` (reused when present);
2. for detection (RetinaNet, demo COCO set), segmentation (FCN, demo
   ADE20K-layout set) and classification (timm ResNet-18, demo
   ImageNet-layout set), a small KD study (``mmkd.study``, the code of
   ``tools/analysis_tools/kd_study.py``): the teacher is trained once and
   cached under ``<work-dir>/teachers`` keyed by its config, then the
   student alone (the baseline) and the distilled students are trained with
   ``tools/train.py``, each scored by its validation at the end of training;
3. ``<work-dir>/summary.png``: each task's teacher, baseline and distilled
   students; ``<work-dir>/<task>_predictions.png``: the same validation
   images as labelled and as predicted by the teacher, the baseline and the
   distilled student (mmdet's / mmseg's own visualizers).

The console shows one line per stage; every run's config, console output
and logs are in its folder under ``<work-dir>/<task>/runs``.
"""
import argparse
import contextlib
import os
import os.path as osp
import shutil
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, ROOT)

from mmkd.study import draw_panel, fmt_seconds, run_study  # noqa: E402

DEMO = osp.join(ROOT, 'configs', 'demo')
TASKS = dict(
    detection=dict(
        title='detection: RetinaNet R18-w32 -> R18-w16, demo COCO set',
        teacher='retinanet_r18-w32_fpn_demo-coco.py',
        student='retinanet_r18-w16_fpn_demo-coco.py',
        distill='retinanet_r18-w32-to-w16_kd-ds_demo-coco.py',
        arms=('baseline', 'kd-ds'),
        # with --iters: a few iterations leave every score below RetinaNet's
        # 0.05 threshold, and COCO evaluation of no boxes has no mAP
        short_options=dict(
            teacher={'model.test_cfg.score_thr': 0.0},
            student={'model.test_cfg.score_thr': 0.0},
            distill={'model.student.test_cfg.score_thr': 0.0})),
    segmentation=dict(
        title='segmentation: FCN R18-w32-d8 -> R18-w16-d8, demo ADE20K set',
        teacher='fcn_r18-w32-d8_demo-ade.py',
        student='fcn_r18-w16-d8_demo-ade.py',
        distill='fcn_r18-w32-to-w16_kd-ds_demo-ade.py',
        arms=('baseline', 'kd-ds')),
    classification=dict(
        title='classification: ResNet-18-w64 -> w8, demo ImageNet set',
        teacher='resnet18-w64_demo-in1k.py',
        student='resnet18-w8_demo-in1k.py',
        distill='resnet18-w64-to-w8_kd-ds_demo-in1k.py',
        arms=('baseline', 'kd', 'kd-ds')),
)


@contextlib.contextmanager
def output_to(log: str):
    """Send this process's stdout and stderr (also C-level) to ``log``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log, 'a') as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def stage(text: str, start: float) -> None:
    print(f'== {text} ({fmt_seconds(time.time() - start)} since the start)',
          flush=True)


def iters_options(iters: int) -> dict:
    """Options that shorten every run to ``iters`` iterations (a check of
    the demo's plumbing, not a result)."""
    return {
        'train_cfg.max_iters': iters,
        'train_cfg.val_interval': iters,
        'default_hooks.checkpoint.interval': iters,
        'default_hooks.logger.interval': 1,
    }


def summary_line(study: dict) -> str:
    """``teacher 0.116, baseline 0.073, kd-ds 0.085 (+0.012) coco/bbox_mAP
    (mean of 1 seed)``."""
    parts = [f'teacher {study["teacher"]["value"]:.4g}']
    for row in study['summary']:
        gain = f' ({row["gain"]:+.3g})' if 'gain' in row else ''
        parts.append(f'{row["arm"]} {row["mean"]:.4g}{gain}')
    n = min(r['n'] for r in study['summary'])
    return (', '.join(parts) +
            f' {study["metric"]} (mean of {n} seed{"s" * (n > 1)})')


def summary_png(studies: dict, path: str) -> None:
    """One panel per task: teacher, baseline and distilled students."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(studies),
                             figsize=(4.2 * len(studies), 4.2),
                             squeeze=False)
    for ax, (task, study) in zip(axes[0], studies.items()):
        teacher = study['teacher']['value']
        n = min(r['n'] for r in study['summary'])
        draw_panel(ax, study['summary'], study['metric'], teacher,
                   f'{task} ({n} seed{"s" * (n > 1)})', teacher_bar=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _run(study: dict, arm: str, seed: int) -> tuple:
    """``(config, checkpoint)`` evaluated for one run of a study."""
    (run, ) = [r for r in study['runs'] if r['arm'] == arm
               and r['seed'] == seed and r['fraction'] == 1.0]
    return run['config'], run['checkpoint']


def _models(study: dict, arm: str, seed: int) -> list:
    teacher = study['teacher']
    return [('teacher', teacher['config'], teacher['checkpoint']),
            ('baseline', *_run(study, 'baseline', seed)),
            (f'distilled ({arm})', *_run(study, arm, seed))]


def _ground_truth(task: str, dataset, index: int):
    """The labels of one validation image, as a data sample to draw."""
    import numpy as np
    import torch
    from mmengine.structures import InstanceData, PixelData
    info = dataset.get_data_info(index)
    if task == 'detection':
        from mmdet.structures import DetDataSample
        boxes = [i['bbox'] for i in info['instances']]
        sample = DetDataSample()
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            labels=torch.tensor([i['bbox_label'] for i in info['instances']],
                                dtype=torch.long))
        return sample
    import mmcv
    from mmseg.structures import SegDataSample
    label = mmcv.imread(info['seg_map_path'], flag='unchanged').astype(
        np.int64)
    if info.get('reduce_zero_label'):  # ADE20K: 0 = unlabelled
        label = np.where(label == 0, 255, label - 1)
    sample = SegDataSample()
    sample.gt_sem_seg = PixelData(data=torch.from_numpy(label)[None])
    return sample


def predictions_png(task: str, study: dict, arm: str, seed: int,
                    num_images: int, path: str,
                    score_thr: float = 0.3) -> None:
    """The first validation images: labels, then each model's prediction,
    side by side (mmdet's DetLocalVisualizer / mmseg's SegLocalVisualizer).

    Args:
        task (str): ``detection`` or ``segmentation``.
        study (dict): The task's study (``run_study``'s result).
        arm (str): The distilled arm to show.
        seed (int): The seed of the runs to show.
        num_images (int): How many validation images (rows).
        path (str): The PNG to write.
        score_thr (float): Boxes below this score are not drawn.
            Defaults to 0.3.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import mmcv
    from mmengine.config import Config
    from mmengine.registry import DATASETS, DefaultScope
    if task == 'detection':
        from mmdet.apis import inference_detector as infer
        from mmdet.apis import init_detector as init
        from mmdet.visualization import DetLocalVisualizer as Visualizer
        draw = dict(pred_score_thr=score_thr)
    else:
        from mmseg.apis import inference_model as infer
        from mmseg.apis import init_model as init
        from mmseg.visualization import SegLocalVisualizer as Visualizer
        draw = dict(with_labels=False)
    models = _models(study, arm, seed)
    cfg = Config.fromfile(models[1][1])
    ds_cfg = cfg.test_dataloader.dataset.copy()
    ds_cfg.pipeline = []
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        dataset = DATASETS.build(ds_cfg)
    indices = list(range(min(num_images, len(dataset))))
    images = [mmcv.imread(dataset.get_data_info(i)['img_path'],
                          channel_order='rgb') for i in indices]
    columns = [('ground truth', [
        dict(data_sample=_ground_truth(task, dataset, i), draw_gt=True,
             draw_pred=False) for i in indices])]
    for name, config, checkpoint in models:
        model = init(config, checkpoint, device='cpu')
        columns.append((name, [
            dict(data_sample=infer(model, dataset.get_data_info(i)[
                'img_path']), draw_gt=False, draw_pred=True)
            for i in indices]))
        meta = model.dataset_meta
    visualizer = Visualizer(name=f'mmkd-demo-{task}-{time.time()}')
    visualizer.dataset_meta = meta
    fig, axes = plt.subplots(len(indices), len(columns),
                             figsize=(3 * len(columns), 3 * len(indices)),
                             squeeze=False)
    for col, (name, samples) in enumerate(columns):
        for row, (image, sample) in enumerate(zip(images, samples)):
            visualizer.add_datasample(name, image, show=False, **sample,
                                      **draw)
            ax = axes[row][col]
            ax.imshow(visualizer.get_image())
            ax.set_axis_off()
            if row == 0:
                ax.set_title(name)
    fig.suptitle(f'{task}: validation images {indices[0]}..{indices[-1]}')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument(
        '--tasks', nargs='+', default=list(TASKS), choices=list(TASKS))
    parser.add_argument('--seeds', type=int, nargs='+', default=[0],
                        help='student seeds (default 0)')
    parser.add_argument(
        '--reuse', action='store_true',
        help='keep the students of an earlier demo run (teachers are always '
        'reused from <work-dir>/teachers)')
    parser.add_argument(
        '--iters', type=int,
        help='train every model for this many iterations only: a quick '
        'check of the demo itself, not a result')
    parser.add_argument('--images', type=int, default=4,
                        help='validation images in the prediction pictures')
    parser.add_argument(
        '--score-thr', type=float, default=0.3,
        help='boxes below this score are not drawn (default 0.3)')
    args = parser.parse_args()
    start = time.time()
    os.chdir(ROOT)  # the demo configs' data paths are relative to it

    from mmkd.datasets.demo_data import make_all_demo_data
    make_all_demo_data(osp.join(ROOT, 'data', 'demo'))
    stage('demo data ready in data/demo', start)
    options = iters_options(args.iters) if args.iters else None
    studies, pictures = {}, []
    for task in args.tasks:
        spec = TASKS[task]
        task_dir = osp.join(args.work_dir, task)
        if not args.reuse and osp.isdir(task_dir):
            shutil.rmtree(task_dir)
        print(f'\n{spec["title"]}', flush=True)
        studies[task] = run_study(
            osp.join(DEMO, spec['teacher']), osp.join(DEMO, spec['student']),
            osp.join(DEMO, spec['distill']), task_dir, arms=spec['arms'],
            seeds=args.seeds, teacher_cache=osp.join(args.work_dir,
                                                      'teachers'),
            cfg_options=options, cwd=ROOT,
            **{f'{k}_options': v
               for k, v in (spec.get('short_options', {})
                            if args.iters else {}).items()},
            command=' '.join(['python', 'tools/demo.py'] + sys.argv[1:]))
        stage(f'{task} done', start)
        if task != 'classification':
            path = osp.join(args.work_dir, f'{task}_predictions.png')
            with output_to(osp.join(args.work_dir, task, 'predictions.log')):
                predictions_png(task, studies[task], spec['arms'][-1],
                                args.seeds[0], args.images, path,
                                args.score_thr)
            pictures.append(path)
            stage(f'{task} predictions drawn', start)
    summary = osp.join(args.work_dir, 'summary.png')
    summary_png(studies, summary)
    print(f'\n== mmkd demo: {fmt_seconds(time.time() - start)} in all ==')
    for task, study in studies.items():
        print(f'{task}: ' + summary_line(study))
    for path in [summary] + pictures:
        print(f'picture: {path}')


if __name__ == '__main__':
    main()
