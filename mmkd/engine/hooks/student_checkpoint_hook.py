"""Write student-only checkpoints a plain mmdet/mmseg/timm can load."""
import os
import os.path as osp
from typing import Any, Iterator, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.dist import master_only
from mmengine.hooks import EMAHook, Hook
from mmengine.model import is_model_wrapper

from mmkd.registry import HOOKS


def _plain(obj: Any) -> Any:
    """Only types torch.load(weights_only=True) accepts without allow-list."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(v) for v in obj)
    if isinstance(obj, (str, int, float, bool, type(None), torch.Tensor)):
        return obj
    if hasattr(obj, 'item'):  # numpy scalars
        return obj.item()
    return str(obj)


def student_state(distiller_state: dict) -> dict:
    """The ``student.*`` entries of a distiller state dict, prefix removed."""
    return {
        k[len('student.'):]: v
        for k, v in distiller_state.items() if k.startswith('student.')
    }


def _types(cfg: Any) -> Iterator[str]:
    """Every ``type`` value in a (nested) config, as a string."""
    if isinstance(cfg, dict):
        for key, value in cfg.items():
            if key == 'type':
                yield value if isinstance(value, str) else _qualname(value)
            else:
                yield from _types(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            yield from _types(value)


def _qualname(obj: Any) -> str:
    return f'{getattr(obj, "__module__", "")}.' \
        f'{getattr(obj, "__qualname__", obj)}'


def _needs_mmkd(model: dict, scope: str) -> bool:
    """Whether building ``model`` needs ``import mmkd``: the mmkd scope or
    any ``mmkd.`` type (or mmkd class) in it, at any depth (an mmdet- or
    mmseg-scoped config reaches mmkd's modules only as ``mmkd.Xxx``)."""
    return scope == 'mmkd' or any(
        name.startswith('mmkd.') for name in _types(model))


def student_config(cfg: Config) -> Config:
    """The run's config with the student as ``model`` and no mmkd parts.

    ``custom_imports`` keeps ``mmkd`` only when the student needs it (e.g.
    ``mmkd.TimmBackbone``, ``mmkd.TimmClassifier``), and keeps the user's
    other imports.
    """
    from mmkd.models.distillers.builder import load_model_cfg
    model = cfg.model
    scope = cfg.get('default_scope', 'mmdet')
    student, scope, _ = load_model_cfg(model['student'], scope)
    out = cfg.copy()
    out.model = student
    out.default_scope = scope
    imports = out.get('custom_imports')
    if imports and not _needs_mmkd(student, scope):
        names = imports.get('imports', [])
        names = [names] if isinstance(names, str) else list(names)
        rest = [n for n in names if n != 'mmkd' and not n.startswith('mmkd.')]
        if rest:
            out.custom_imports = dict(imports, imports=rest)
        else:
            out.pop('custom_imports')  # a plain mmdet / mmseg model
    out.custom_hooks = [
        h for h in out.get('custom_hooks', [])
        if not str(h.get('type', '')).startswith('mmkd.')
    ]
    return out


@HOOKS.register_module()
class StudentCheckpointHook(Hook):
    """Save the student alone next to every runner checkpoint and at the end.

    Files: ``student_iter_<n>.pth`` / ``student_epoch_<n>.pth`` at each save,
    ``student_final.pth`` after training, and ``student_config.py`` (the run's
    config with the student as ``model``). Keys are the student's own (no
    ``student.`` prefix, no teacher, no auxiliary heads); ``meta`` holds only
    plain types, so ``torch.load(weights_only=True)`` — and thus plain
    ``mmdet.apis.init_detector`` / ``mmseg.apis.init_model`` — loads it
    without importing mmkd.

    With mmengine's ``EMAHook`` every file holds the EMA weights (as the
    runner's own checkpoints do after ``EMAHook`` swaps them in), otherwise
    the live ones; ``meta['weights']`` says which (``'ema'`` / ``'live'``).

    Args:
        out_dir (str, optional): Where to write. Defaults to the work dir.
        max_keep (int, optional): Keep only the newest ``max_keep`` periodic
            student files (``student_final.pth`` is always kept). Defaults to
            None: the runner's ``default_hooks.checkpoint.max_keep_ckpts``
            (all files when that is unset or -1).
    """

    priority = 'LOW'

    def __init__(self, out_dir: Optional[str] = None,
                 max_keep: Optional[int] = None) -> None:
        self.out_dir = out_dir
        self.max_keep = max_keep
        self._trained = False
        self._written = []

    def _dir(self, runner) -> str:
        return self.out_dir or runner.work_dir

    def before_train(self, runner) -> None:
        self._trained = True
        if self.max_keep is None:
            ckpt_hook = (runner.cfg.get('default_hooks') or {}).get(
                'checkpoint') or {}
            self.max_keep = ckpt_hook.get('max_keep_ckpts', -1)
        self._dump_config(runner)

    @master_only
    def _dump_config(self, runner) -> None:
        student_config(runner.cfg).dump(
            osp.join(self._dir(runner), 'student_config.py'))

    @staticmethod
    def _model(runner):
        return runner.model.module if is_model_wrapper(
            runner.model) else runner.model

    def _weights(self, runner) -> Tuple[dict, str]:
        """The distiller's state dict to export and which weights it holds:
        the EMA model's when an ``EMAHook`` runs, else the live model's."""
        ema = next((h for h in runner.hooks if isinstance(h, EMAHook)), None)
        if ema is not None and getattr(ema, 'ema_model', None) is not None:
            model, weights = ema.ema_model.module, 'ema'
        else:
            model, weights = self._model(runner), 'live'
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        return state, weights

    @master_only
    def _save(self, runner, state: dict, meta: dict, name: str) -> None:
        state = student_state(state)
        # a timm student (mmkd.TimmClassifier) is exported in timm's own keys
        to_plain = getattr(self._model(runner).student, 'plain_state_dict',
                           None)
        if to_plain is not None:
            state = to_plain(state)
        ckpt = dict(state_dict=state, meta=_plain(meta))
        path = osp.join(self._dir(runner), name)
        torch.save(ckpt, path + '.tmp')
        os.replace(path + '.tmp', path)  # never a half-written file

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        meta = checkpoint.get('meta', {})
        by_epoch = runner.train_loop.__class__.__name__.startswith('Epoch')
        name = (f'student_epoch_{meta.get("epoch")}.pth'
                if by_epoch else f'student_iter_{meta.get("iter")}.pth')
        state, weights = self._weights(runner)
        self._save(runner, state, self._meta(meta, weights), name)
        self._written.append(name)
        while self.max_keep and 0 < self.max_keep < len(self._written):
            self._remove(runner, self._written.pop(0))

    @master_only
    def _remove(self, runner, name: str) -> None:
        path = osp.join(self._dir(runner), name)
        if osp.isfile(path):
            os.remove(path)

    def after_run(self, runner) -> None:
        if not self._trained:  # a test-only run
            return
        model = self._model(runner)
        state, weights = self._weights(runner)
        meta = dict(epoch=runner.epoch, iter=runner.iter)
        meta['dataset_meta'] = getattr(model.student, 'dataset_meta', None) \
            or runner.train_dataloader.dataset.metainfo
        self._save(runner, state, self._meta(meta, weights),
                   'student_final.pth')

    @staticmethod
    def _meta(meta: dict, weights: str) -> dict:
        keep = ('epoch', 'iter', 'dataset_meta', 'seed', 'experiment_name',
                'time', 'mmengine_version')
        out = {k: meta[k] for k in keep if k in meta}
        out['distilled_with'] = 'mmkd'
        out['weights'] = weights  # 'ema' or 'live'
        return out
