"""Run a seeded KD ablation study and write ``study.json/.md/.png``.

The teacher is trained once (on the whole training set, seed
``teacher_seed``) and cached under ``teacher_cache`` keyed by its config
name and the hash of its resolved config, so every arm, seed and fraction —
and a later study or demo run with the same teacher config — reuses it.
"""
import json
import math
import os
import os.path as osp
import time
from typing import List, Optional, Sequence

from .configs import (StudyError, arm_config, check_arms, for_study,
                      load_config, pick_metric, with_fraction)
from .report import markdown, plot, summarize
from .runs import Progress, fmt_seconds, teacher_dir, train_and_evaluate


def _name(path: str) -> str:
    return osp.splitext(osp.basename(path))[0]


def train_teacher(teacher: str, cache_dir: str, options: dict, seed: int,
                  cwd: str) -> dict:
    """Train (or reuse from ``cache_dir``) and evaluate the teacher.

    Args:
        teacher (str): The teacher's config file.
        cache_dir (str): The teacher cache.
        options (dict): ``--cfg-options`` for the teacher config.
        seed (int): The teacher's seed.
        cwd (str): Working directory of the tools.

    Returns:
        dict: The run's result (``metrics``, ``checkpoint``, ...) plus
        ``trained`` (whether it was trained now) and ``dir``.
    """
    cfg = for_study(load_config(teacher, options), seed, teacher)
    run_dir = teacher_dir(cfg, cache_dir, _name(teacher))
    print(f'teacher  {_name(teacher)} (seed {seed}, cache {run_dir}) ...',
          end=' ', flush=True)
    start = time.time()
    result, trained = train_and_evaluate(cfg, run_dir, False, cwd)
    took = fmt_seconds(time.time() - start) if trained else 'cached'
    print(took, flush=True)
    alias = link_teacher(result['checkpoint'], cache_dir, _name(teacher))
    return dict(result, trained=trained, dir=run_dir, seed=seed,
                alias=alias)


def link_teacher(checkpoint: str, cache_dir: str, name: str) -> str:
    """``<cache_dir>/<config name>.pth``: a stable name (a relative
    symbolic link, replaced atomically) for the latest teacher of that
    config, which distillation configs can name as ``teacher_ckpt``."""
    alias = osp.join(cache_dir, f'{name}.pth')
    tmp = f'{alias}.tmp{os.getpid()}'
    os.symlink(osp.relpath(checkpoint, cache_dir), tmp)
    os.replace(tmp, alias)
    return alias


def run_study(teacher: str,
              student: str,
              distill: str,
              work_dir: str,
              arms: Sequence[str] = ('baseline', 'kd', 'ds', 'kd-ds'),
              extra_arms: Optional[dict] = None,
              seeds: Sequence[int] = (0, 1, 2),
              fractions: Sequence[float] = (1.0, ),
              teacher_cache: Optional[str] = None,
              cfg_options: Optional[dict] = None,
              teacher_options: Optional[dict] = None,
              student_options: Optional[dict] = None,
              distill_options: Optional[dict] = None,
              metric: Optional[str] = None,
              study_seed: int = 0,
              teacher_seed: int = 0,
              cwd: Optional[str] = None,
              command: Optional[str] = None) -> dict:
    """Train and evaluate every (fraction, arm, seed) run; write the study.

    Args:
        teacher (str): Teacher config file.
        student (str): Student config file (the ``baseline`` arm).
        distill (str): Distillation config file (``kd-ds``; ``kd`` and
            ``ds`` are derived from it).
        work_dir (str): Where runs and ``study.*`` go.
        arms (Sequence[str]): Arms to run, in table order.
        extra_arms (dict, optional): Named extra arms: name -> overrides of
            the distillation config; run after ``arms``.
        seeds (Sequence[int]): Run seeds (``randomness.seed``).
        fractions (Sequence[float]): Train fractions in (0, 1].
        teacher_cache (str, optional): Teacher cache folder. Defaults to
            ``<work_dir>/teachers``.
        cfg_options (dict, optional): Options for every config.
        teacher_options / student_options / distill_options (dict,
            optional): Options for one config only (after ``cfg_options``).
        metric (str, optional): The metric key. Defaults to None (detected:
            COCO bbox mAP, mIoU or top-1).
        study_seed (int): Seed of the train-fraction subsets. Defaults to 0.
        teacher_seed (int): The teacher's seed. Defaults to 0.
        cwd (str, optional): Working directory of the tools (relative data
            paths in the configs). Defaults to the current directory.
        command (str, optional): The command line, recorded in the outputs.

    Returns:
        dict: What ``study.json`` holds.
    """
    extra_arms = dict(extra_arms or {})
    check_arms(arms, list(extra_arms))
    arms = list(arms) + [a for a in extra_arms if a not in arms]
    if len(set(seeds)) != len(seeds):
        raise StudyError(f'--seeds: repeated seeds in {list(seeds)}')
    bad = [f for f in fractions if not 0 < f <= 1]
    if bad or len(set(fractions)) != len(fractions):
        raise StudyError(f'--train-fractions {list(fractions)}: each must be '
                         'in (0, 1], none repeated')
    cwd = cwd or os.getcwd()
    work_dir = osp.abspath(work_dir)
    teacher_cache = osp.abspath(teacher_cache
                                or osp.join(work_dir, 'teachers'))
    os.makedirs(work_dir, exist_ok=True)

    def opts(own):
        return {**(cfg_options or {}), **(own or {})}

    student_cfg = load_config(student, opts(student_options))
    distill_cfg = load_config(distill, opts(distill_options))

    def config(arm, seed, teacher_ckpt):
        path = student if arm == 'baseline' else distill
        cfg = arm_config(arm, student_cfg, distill_cfg, teacher_ckpt, path,
                         extra_arms)
        return for_study(cfg, seed, path), path

    for arm in arms:  # input errors before anything is trained
        config(arm, seeds[0], 'teacher.pth')
    # the ds arm builds the teacher but never runs it
    uses_teacher = any(a not in ('baseline', 'ds') for a in arms)
    t = train_teacher(teacher, teacher_cache, opts(teacher_options),
                      teacher_seed, cwd) if uses_teacher else None

    plan = [(f, a, s) for f in fractions for a in arms for s in seeds]
    progress = Progress(len(plan))
    lengths, runs = {}, []
    for fraction, arm, seed in plan:
        label = f'{arm:<8} seed {seed}  fraction {fraction:g}'
        progress.begin(label)
        try:
            cfg, path = config(arm, seed, t and t['checkpoint'])
            cfg = with_fraction(cfg, fraction, study_seed, lengths, path)
            run_dir = osp.join(work_dir, 'runs',
                               f'{arm}_frac{fraction:g}_seed{seed}')
            result, fresh = train_and_evaluate(cfg, run_dir,
                                               arm != 'baseline', cwd)
            metric = pick_metric(result['metrics'], metric,
                                 f'the validation of {run_dir}')
        except BaseException:
            progress.fail()
            raise
        value = float(result['metrics'][metric])
        progress.end(f'{metric} = {value:.4g}',
                     result['seconds'] if fresh else None)
        runs.append(dict(arm=arm, seed=seed, fraction=fraction, value=value,
                         dir=run_dir, **result))
    return write_study(work_dir, runs, arms, fractions, metric, t, command,
                       dict(teacher=teacher, student=student,
                            distill=distill))


def write_study(work_dir: str, runs: List[dict], arms: Sequence[str],
                fractions: Sequence[float], metric: str,
                teacher: Optional[dict], command: Optional[str],
                configs: dict) -> dict:
    """Write ``study.json``, ``study.md`` and ``study.png``; print the
    table."""
    t_value = None
    if teacher is not None:
        t_value = float(teacher['metrics'][pick_metric(
            teacher['metrics'], metric, f'the teacher in {teacher["dir"]}')])
    rows = summarize(runs, arms, fractions)
    study = dict(metric=metric, configs=configs, command=command,
                 teacher=teacher and dict(teacher, value=t_value),
                 summary=rows, runs=runs)
    with open(osp.join(work_dir, 'study.json'), 'w') as f:
        json.dump(_no_nan(study), f, indent=1)
    table = markdown(rows, metric, t_value, command)
    with open(osp.join(work_dir, 'study.md'), 'w') as f:
        f.write(table)
    plot(rows, metric, t_value, osp.join(work_dir, 'study.png'),
         osp.basename(configs['distill']))
    print('\n' + table)
    print(f'written: {osp.join(work_dir, "study.json")}, study.md, '
          'study.png')
    return study


def _no_nan(obj):
    """NaN (the std of a single seed) as JSON null."""
    if isinstance(obj, dict):
        return {k: _no_nan(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_no_nan(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj
