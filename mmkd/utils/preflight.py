"""Check a config's data and checkpoint paths before a runner writes
anything.

The runner creates its work dir, log files and visualiser output while it is
built, long before a dataset opens its first file. Checking every local path
named by the dataloaders and evaluators first means a typo in ``data_root`` or
``ann_file`` fails fast, names the config key and the path, and leaves the work
dir untouched. Checkpoint files are also checked to be whole (a cut-off
download or a foreign file is "corrupt or truncated", before anything is
written).
"""
import os.path as osp
from typing import Iterator, Tuple

from mmengine.config import Config

from .checkpoint import CorruptCheckpointError, check_checkpoint_file

SPLITS = ('train', 'val', 'test')


def check_file(path: str, what: str) -> None:
    """Raise ``FileNotFoundError`` naming ``what`` and ``path`` if missing.

    URLs (``http(s)://`` and mmengine's other ``scheme://`` paths) pass:
    they are fetched when loaded.

    Args:
        path (str): The file to check.
        what (str): What the file is, for the message (e.g. a config key).
    """
    if not _is_remote(path) and not osp.isfile(path):
        raise FileNotFoundError(f'{what}: file "{path}" does not exist')


def _is_remote(path: str) -> bool:
    return '://' in str(path)


def check_checkpoint(path: str, what: str) -> None:
    """Check that a local checkpoint exists and is whole (URLs pass).

    Args:
        path (str): The checkpoint file.
        what (str): What it is, for the message (e.g. a config key).

    Raises:
        FileNotFoundError: naming ``what`` and ``path``.
        CorruptCheckpointError: the file is truncated or not a checkpoint
            (:func:`~mmkd.utils.checkpoint.check_checkpoint_file`); the
            message starts with ``what``.
    """
    check_file(path, what)
    if _is_remote(path):
        return
    try:
        check_checkpoint_file(path)
    except CorruptCheckpointError as err:
        raise CorruptCheckpointError(f'{what}: {err}') from None


def check_checkpoints(cfg: Config) -> None:
    """Check the local checkpoint files a run will load.

    ``load_from`` (``--resume``'s file, tools/test.py's checkpoint) and the
    distillers' ``model.teacher_ckpt`` / ``model.student_ckpt``: each must
    exist and be whole (:func:`check_checkpoint`). URLs pass; they are
    fetched when loaded.

    Args:
        cfg (Config): The full runner config.

    Raises:
        FileNotFoundError: naming the config key and the missing path.
        CorruptCheckpointError: naming the config key and the damaged file
            ("corrupt or truncated").
    """
    if cfg.get('load_from'):
        check_checkpoint(cfg.load_from, 'load_from')
    model = cfg.get('model')
    for key in ('teacher_ckpt', 'student_ckpt'):
        path = model.get(key) if isinstance(model, dict) else None
        if path:
            check_checkpoint(path, f'model.{key}')


def _datasets(cfg: dict, key: str) -> Iterator[Tuple[str, dict]]:
    """Yield ``(config key, dataset cfg)`` through dataset wrappers."""
    yield key, cfg
    if isinstance(cfg.get('dataset'), dict):
        yield from _datasets(cfg['dataset'], f'{key}.dataset')
    for i, sub in enumerate(cfg.get('datasets') or []):
        if isinstance(sub, dict):
            yield from _datasets(sub, f'{key}.datasets[{i}]')


def _check_dataset(ds: dict, key: str) -> None:
    root = ds.get('data_root') or ''
    if root and not _is_remote(root) and not osp.isdir(root):
        raise FileNotFoundError(
            f'{key}.data_root: directory "{root}" does not exist')

    def join(p):
        return p if (osp.isabs(p) or not root) else osp.join(root, p)

    ann = ds.get('ann_file')
    if ann and not _is_remote(ann):
        check_file(join(ann), f'{key}.ann_file')
    prefix = ds.get('data_prefix')
    if isinstance(prefix, str):
        prefix = dict(prefix=prefix)
    for name, sub in (prefix or {}).items():
        if sub and isinstance(sub, str) and not _is_remote(sub):
            path = join(sub)
            if not osp.isdir(path):
                raise FileNotFoundError(
                    f'{key}.data_prefix.{name}: directory "{path}" '
                    'does not exist')


def train_splits(cfg: Config) -> Tuple[str, ...]:
    """The splits training reads: ``train``, and ``val`` when the config
    validates (``val_cfg`` and ``val_dataloader`` set, as mmengine's runner
    requires); ``test`` is for tools/test.py only.

    Args:
        cfg (Config): The full runner config.

    Returns:
        tuple[str]: ``('train', 'val')`` or ``('train', )``.
    """
    if (cfg.get('val_cfg') is not None
            and cfg.get('val_dataloader') is not None):
        return ('train', 'val')
    return ('train', )


def check_data_paths(cfg: Config, splits: Tuple[str, ...] = SPLITS) -> None:
    """Check the local paths of the given splits' datasets and evaluators.

    Args:
        cfg (Config): The full runner config.
        splits (tuple[str]): Which of ``train``, ``val``, ``test`` to check.
            Defaults to all three.

    Raises:
        FileNotFoundError: naming the config key and the missing path.
    """
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if loader and isinstance(loader.get('dataset'), dict):
            for key, ds in _datasets(loader['dataset'],
                                     f'{split}_dataloader.dataset'):
                _check_dataset(ds, key)
        evaluator = cfg.get(f'{split}_evaluator')
        metrics = evaluator if isinstance(evaluator, (list, tuple)) else [
            evaluator
        ]
        for i, metric in enumerate(metrics):
            ann = metric.get('ann_file') if isinstance(metric, dict) else None
            if ann and not _is_remote(ann):
                key = f'{split}_evaluator' + (
                    f'[{i}]' if len(metrics) > 1 else '')
                check_file(ann, f'{key}.ann_file')
