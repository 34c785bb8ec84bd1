"""Seeded KD ablation study: baseline, KD, deep supervision, KD + DS.

For a teacher, a student and a distillation config, trains the teacher once
(cached by config), then every arm x seed x train fraction through
``tools/train.py``; each run is scored by its validation at the end of
training (of the student, for a distiller: the same weights as its
student-only export ``student_final.pth``). Writes
``study.json`` (every run), ``study.md`` (mean ± std per arm and fraction,
gain over the baseline with its spread, the teacher's score) and
``study.png``. Finished runs are not repeated when the command is run again.

Example (the demo's detection configs)::

    python tools/analysis_tools/kd_study.py \\
        --teacher configs/demo/retinanet_r18-w32_fpn_demo-coco.py \\
        --student configs/demo/retinanet_r18-w16_fpn_demo-coco.py \\
        --distill configs/demo/retinanet_r18-w32-to-w16_kd-ds_demo-coco.py \\
        --seeds 0 1 2 --arms baseline kd ds kd-ds \\
        --work-dir work_dirs/study/det
"""
import argparse
import os.path as osp
import shlex
import sys

from mmengine.config import DictAction

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from mmkd.study import ARMS, StudyError, run_study  # noqa: E402


def get_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Seeded KD ablation study (baseline / kd / ds / kd-ds)')
    parser.add_argument('--teacher', required=True, help='teacher config')
    parser.add_argument('--student', required=True,
                        help='student config (the baseline arm)')
    parser.add_argument(
        '--distill', required=True,
        help='distillation config with KD and deep supervision (the kd-ds '
        'arm; kd and ds are derived from it)')
    parser.add_argument('--work-dir', required=True,
                        help='folder of the runs and study.json/.md/.png')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2],
                        help='run seeds (randomness.seed); default 0 1 2')
    parser.add_argument('--arms', nargs='+', default=list(ARMS),
                        help=f'built-in arms, in table order ({", ".join(ARMS)}'
                        '; default all)')
    parser.add_argument(
        '--extra-arm', nargs='+', action='append', default=[],
        metavar=('NAME', 'KEY=VALUE'),
        help='a named variant of the distillation config, e.g. '
        '--extra-arm dkd model.distill.logits.type=mmkd.DKDLoss '
        'model.deep_supervision=None (repeatable; run after --arms)')
    parser.add_argument(
        '--train-fractions', type=float, nargs='+', default=[1.0],
        help='fractions of the training set, e.g. 0.25 0.5 1.0 '
        '(deterministic nested subsets); default 1.0')
    parser.add_argument(
        '--teacher-cache',
        help='teacher cache folder (default <work-dir>/teachers); share one '
        'between studies to train each teacher config once')
    parser.add_argument(
        '--metric',
        help='metric key of the evaluator (default: coco/bbox_mAP, mIoU or '
        'accuracy/top1, whichever the evaluator returns)')
    parser.add_argument('--teacher-seed', type=int, default=0,
                        help='seed of the teacher run (default 0)')
    parser.add_argument(
        '--study-seed', type=int, default=0,
        help='seed of the train-fraction subsets (default 0)')
    for name, what in (('cfg', 'every config'),
                       ('teacher', 'the teacher config only'),
                       ('student', 'the student config only'),
                       ('distill', 'the distillation config only')):
        parser.add_argument(
            f'--{name}-options', nargs='+', action=DictAction,
            help=f'key=value overrides for {what}, as tools/train.py '
            '--cfg-options')
    return parser.parse_args(argv)


def parse_extra_arms(specs) -> dict:
    """``[[name, 'k=v', ...], ...]`` -> ``{name: {k: v}}``, values parsed as
    ``--cfg-options`` parses them (numbers, None, lists, ...)."""
    arms = {}
    for name, *pairs in specs:
        if name in arms:
            raise StudyError(f'--extra-arm {name} given twice')
        if not pairs or any('=' not in p for p in pairs):
            raise StudyError(f'--extra-arm {name}: give KEY=VALUE overrides '
                             f'after the name (got {pairs})')
        arms[name] = {k: DictAction._parse_iterable(v)
                      for k, v in (p.split('=', 1) for p in pairs)}
    return arms


def main(argv=None) -> None:
    args = get_args(argv)
    command = ' '.join(
        shlex.quote(a)
        for a in ['python', 'tools/analysis_tools/kd_study.py'] +
        (sys.argv[1:] if argv is None else list(argv)))
    try:
        run_study(
            args.teacher, args.student, args.distill, args.work_dir,
            arms=args.arms, extra_arms=parse_extra_arms(args.extra_arm),
            seeds=args.seeds,
            fractions=args.train_fractions,
            teacher_cache=args.teacher_cache, cfg_options=args.cfg_options,
            teacher_options=args.teacher_options,
            student_options=args.student_options,
            distill_options=args.distill_options, metric=args.metric,
            study_seed=args.study_seed, teacher_seed=args.teacher_seed,
            command=command)
    except (StudyError, FileNotFoundError, ValueError) as err:
        sys.exit(f'error: {err}')


if __name__ == '__main__':
    main()
