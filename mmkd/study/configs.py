"""The configs of a KD study: one per arm, seed and train fraction.

Every run of a study is a plain mmengine config derived from the user's
teacher, student and distillation configs:

* ``baseline``: the student config (the student alone);
* ``kd-ds``: the distillation config as it is;
* ``kd``: the distillation config without deep supervision;
* ``ds``: the distillation config without any teacher term (``distill``
  emptied, the student's own auxiliary head not distilled, the auxiliary
  heads trained on the labels only) — deep supervision by itself;
* named extra arms (``--extra-arm NAME KEY=VALUE ...``): the distillation
  config with those overrides, e.g. another KD loss (DKD, DIST, BKD; CWD;
  class-only KD instead of LD) with or without deep supervision — the
  variants whose lead the small-data pitfall is about.

A run's seed goes to ``randomness.seed``; a train fraction below 1 keeps a
deterministic random subset of the training set through
:class:`mmengine.dataset.BaseDataset`'s ``indices`` (drawn with a fixed study
seed, the same for every arm and run seed, and nested: the 25 % subset is
part of the 50 % one).
"""
import copy
import hashlib
import inspect
import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.config import Config, ConfigDict

ARMS = ('baseline', 'kd', 'ds', 'kd-ds')

#: metric keys looked for, in order, when ``--metric`` is not given:
#: mmdet's CocoMetric, mmseg's IoUMetric, mmkd's / mmpretrain's Accuracy
KNOWN_METRICS = ('coco/bbox_mAP', 'mIoU', 'accuracy/top1')


class StudyError(Exception):
    """A study input or run that cannot go on; the message says why."""


def load_config(path: str, options: Optional[dict] = None) -> Config:
    """``Config.fromfile(path)`` with ``--cfg-options`` style ``options``."""
    try:
        # custom_imports are for the runs; this process only reads
        cfg = Config.fromfile(path, import_custom_modules=False)
    except FileNotFoundError as err:
        raise StudyError(f'config "{path}": {err}') from err
    if options:
        cfg.merge_from_dict(copy.deepcopy(options))
    return cfg


def config_hash(cfg: Config) -> str:
    """A short hash of the resolved config text (what the run will train)."""
    return hashlib.sha1(cfg.pretty_text.encode()).hexdigest()[:12]


def for_study(cfg: Config, seed: int, path: str = 'config') -> Config:
    """A copy of ``cfg`` seeded with ``seed``, validated once, at the end of
    training (the study's score of the run).

    Args:
        cfg (Config): The run's config.
        seed (int): The run's seed (``randomness.seed``).
        path (str): The config's file, for messages.

    Returns:
        Config: The copy.
    """
    cfg = copy.deepcopy(cfg)
    missing = [k for k in ('val_dataloader', 'val_evaluator', 'val_cfg')
               if not cfg.get(k)]
    if missing:
        raise StudyError(f'{path}: no {", ".join(missing)}; the study scores '
                         'each run by its validation at the end of training')
    cfg.randomness = dict(cfg.get('randomness') or {}, seed=seed)
    train_cfg = cfg.get('train_cfg') or {}
    for key in ('max_iters', 'max_epochs'):
        if train_cfg.get(key):  # no validation before the end
            cfg.train_cfg.val_interval = train_cfg[key]
            cfg.train_cfg.pop('val_begin', None)
    cfg.pop('work_dir', None)  # each run gets its own (--work-dir)
    return cfg


def _distiller_accepts(model: dict, arg: str) -> bool:
    from mmengine.registry import MODELS
    import mmkd  # noqa: F401  (registers the distillers)
    cls = MODELS.get(model.get('type', ''))
    return cls is not None and arg in inspect.signature(cls).parameters


def arm_config(arm: str, student: Config, distill: Config,
               teacher_ckpt: str, distill_path: str = 'distill',
               extra: Optional[Dict[str, dict]] = None) -> Config:
    """The config of one study arm (not yet seeded).

    Args:
        arm (str): One of :data:`ARMS` or a name of ``extra``.
        student (Config): The student config (options applied).
        distill (Config): The distillation config (options applied).
        teacher_ckpt (str): The trained teacher's checkpoint.
        distill_path (str): The distillation config's file, for messages.
        extra (dict, optional): Extra arms: name -> ``{key: value}``
            overrides of the distillation config (``--cfg-options``
            style). Defaults to None.

    Returns:
        Config: The arm's config.
    """
    extra = extra or {}
    if arm == 'baseline':
        return copy.deepcopy(student)
    if arm not in ARMS and arm not in extra:
        raise StudyError(f'unknown arm "{arm}" (expected one of {ARMS} or '
                         f'an --extra-arm: {sorted(extra)})')
    cfg = copy.deepcopy(distill)
    model = cfg.get('model') or {}
    if 'teacher' not in model or 'student' not in model:
        raise StudyError(
            f'{distill_path}: model is "{model.get("type")}", not an mmkd '
            'distiller (no model.student / model.teacher)')
    cfg.model.teacher_ckpt = teacher_ckpt
    if 'teacher_ckpt' in cfg:  # the configs' top-level variable
        cfg.teacher_ckpt = teacher_ckpt
    hooks = list(cfg.get('custom_hooks') or [])
    if not any(str(h.get('type', '')).endswith('StudentCheckpointHook')
               for h in hooks):
        # the study evaluates each distilled student from its export
        hooks.append(dict(type='mmkd.StudentCheckpointHook'))
        cfg.custom_hooks = hooks
    if arm in extra:
        try:
            cfg.merge_from_dict(copy.deepcopy(extra[arm]))
        except Exception as err:
            raise StudyError(f'--extra-arm {arm}: the overrides '
                             f'{extra[arm]} do not apply to '
                             f'{distill_path}: {err}') from err
    elif arm == 'kd':
        cfg.model.deep_supervision = None
    elif arm == 'ds':
        if not cfg.model.get('deep_supervision'):
            raise StudyError(
                f'arm "ds" needs deep supervision: {distill_path} has no '
                'model.deep_supervision')
        # _delete_ makes the merge replace model.distill by {}
        cfg.merge_from_dict({
            'model.distill': dict(_delete_=True),
            'model.deep_supervision.kd_weight': 0.0,
            'model.deep_supervision.gt_weight': 1.0,
        })
        if 'distill_aux_head' in cfg.model or _distiller_accepts(
                cfg.model, 'distill_aux_head'):
            cfg.model.distill_aux_head = False
    return cfg


# ---------------------------------------------------------------- subsets
def train_leaves(cfg: Config) -> List[Tuple[str, ConfigDict]]:
    """``(config key, dataset cfg)`` of the training datasets inside any
    dataset wrappers (``dataset`` / ``datasets`` keys)."""
    loader = cfg.get('train_dataloader') or {}
    if not isinstance(loader.get('dataset'), dict):
        raise StudyError('the config has no train_dataloader.dataset')
    out = []

    def walk(ds, key):
        if isinstance(ds.get('dataset'), dict):
            walk(ds['dataset'], f'{key}.dataset')
        elif ds.get('datasets'):
            for i, sub in enumerate(ds['datasets']):
                walk(sub, f'{key}.datasets[{i}]')
        else:
            out.append((key, ds))

    walk(loader['dataset'], 'train_dataloader.dataset')
    return out


def dataset_length(cfg: Config, key: str, ds_cfg: dict) -> int:
    """Number of samples of one training dataset (after its filters),
    built in the config's default scope without its pipeline."""
    from mmengine.dataset import BaseDataset
    from mmengine.registry import DATASETS, DefaultScope
    import mmkd  # noqa: F401
    from mmkd.utils import check_data_paths
    check_data_paths(cfg, ('train', ))
    ds_cfg = copy.deepcopy(ds_cfg)
    ds_cfg['pipeline'] = []
    scope = cfg.get('default_scope') or 'mmengine'
    with DefaultScope.overwrite_default_scope(scope):
        dataset = DATASETS.build(ds_cfg)
    if not isinstance(dataset, BaseDataset):
        raise StudyError(
            f'{key}: {type(dataset).__name__} is not an mmengine BaseDataset, '
            'so --train-fractions cannot select a subset (indices=...)')
    return len(dataset)


def subset_indices(length: int, fraction: float, study_seed: int,
                   leaf: int = 0) -> List[int]:
    """Sorted indices of a ``fraction`` of ``length`` samples.

    The order is one permutation drawn from ``(study_seed, leaf)``, so the
    subsets of one dataset are nested across fractions and the same for
    every arm and run seed.
    """
    if not 0 < fraction <= 1:
        raise StudyError(f'train fraction {fraction} is not in (0, 1]')
    count = max(1, int(round(fraction * length)))
    order = np.random.default_rng([study_seed, leaf]).permutation(length)
    return sorted(int(i) for i in order[:count])


def with_fraction(cfg: Config, fraction: float, study_seed: int,
                  lengths: Dict[str, int], path: str = 'config') -> Config:
    """``cfg`` training on a deterministic ``fraction`` of its train set.

    Args:
        cfg (Config): The run's config (modified in place and returned).
        fraction (float): In (0, 1]; 1 keeps the whole set.
        study_seed (int): Seed of the subset draw (not the run's seed).
        lengths (dict): Cache of dataset lengths, keyed by the dataset
            config's text (filled here).
        path (str): The config's file, for messages.

    Returns:
        Config: ``cfg``.
    """
    if math.isclose(fraction, 1.0):
        return cfg
    for leaf, (key, ds) in enumerate(train_leaves(cfg)):
        if ds.get('indices') is not None:
            raise StudyError(
                f'{path}: {key}.indices is already set; --train-fractions '
                'selects the subsets itself')
        text = repr(ds.to_dict() if hasattr(ds, 'to_dict') else ds)
        if text not in lengths:
            lengths[text] = dataset_length(cfg, key, ds)
        ds['indices'] = subset_indices(lengths[text], fraction, study_seed,
                                       leaf)
    return cfg


# ---------------------------------------------------------------- metrics
def pick_metric(metrics: dict, key: Optional[str] = None,
                source: str = 'evaluation') -> str:
    """The study's metric among what the evaluator returned.

    Args:
        metrics (dict): The evaluator's results.
        key (str, optional): The key asked for (``--metric``). Defaults to
            None: the first of :data:`KNOWN_METRICS` present.
        source (str): Where the metrics come from, for messages.

    Returns:
        str: The key.
    """
    if key is not None:
        if key not in metrics:
            raise StudyError(f'--metric {key}: not among the metrics of '
                             f'{source}: {sorted(metrics)}')
        return key
    for known in KNOWN_METRICS:
        if known in metrics:
            return known
    raise StudyError(f'{source} returned {sorted(metrics)}, none of '
                     f'{list(KNOWN_METRICS)}; choose one with --metric')


def check_arms(arms: Sequence[str], extra: Sequence[str] = ()) -> None:
    """Refuse unknown or repeated arms and extra arms that reuse a built-in
    name, naming them."""
    clash = [a for a in extra if a in ARMS]
    if clash:
        raise StudyError(f'--extra-arm: {clash} is a built-in arm name '
                         f'({ARMS}); name the variant otherwise')
    bad = [a for a in arms if a not in ARMS and a not in extra]
    if bad:
        raise StudyError(f'--arms: unknown {bad} (expected some of {ARMS} '
                         f'or an --extra-arm name)')
    if len(set(arms)) != len(arms):
        raise StudyError(f'--arms: repeated arms in {list(arms)}')
