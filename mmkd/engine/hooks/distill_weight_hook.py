"""Schedule the weight of every distillation term over training."""
import math
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmkd.registry import HOOKS


def distill_scale(step: int,
                  warmup: int = 0,
                  decay: Optional[str] = None,
                  total: Optional[int] = None,
                  stop: Optional[int] = None,
                  min_scale: float = 0.0) -> float:
    """The multiplier of the distillation terms at ``step`` (0-based).

    Linear warm-up from 0 over ``warmup`` steps, then constant, or decaying
    (``'linear'`` or ``'cosine'``) to ``min_scale`` at ``total``; 0 from
    ``stop`` on.
    """
    if stop is not None and step >= stop:
        return 0.0
    scale = 1.0
    if warmup and step < warmup:
        scale = (step + 1) / warmup
    elif decay is not None and total:
        t = min(max(step - warmup, 0) / max(total - warmup, 1), 1.0)
        factor = (1 - t) if decay == 'linear' else 0.5 * (1 + math.cos(
            math.pi * t))
        scale = min_scale + (1 - min_scale) * factor
    return scale


@HOOKS.register_module()
class DistillWeightHook(Hook):
    """Warm up, decay or stop the distillation terms (KD and deep supervision).

    Sets ``distill_scale`` on the distiller before every training iteration;
    the student's own task losses are never scaled. Counts iterations, or
    epochs with ``by_epoch=True``.

    Args:
        warmup (int): Linear warm-up length. Defaults to 0.
        decay (str, optional): ``'linear'`` or ``'cosine'`` decay to
            ``min_scale`` at ``total``. Defaults to None.
        total (int, optional): End of the decay. Defaults to None (the
            run's ``max_iters`` / ``max_epochs``).
        stop (int, optional): Switch distillation off from here on.
            Defaults to None.
        min_scale (float): Scale reached at the end of the decay. Defaults
            to 0.0.
        by_epoch (bool): Count epochs instead of iterations. Defaults to
            False.
    """

    priority = 'HIGH'

    def __init__(self,
                 warmup: int = 0,
                 decay: Optional[str] = None,
                 total: Optional[int] = None,
                 stop: Optional[int] = None,
                 min_scale: float = 0.0,
                 by_epoch: bool = False) -> None:
        if decay not in (None, 'linear', 'cosine'):
            raise ValueError(
                f"DistillWeightHook: decay must be 'linear' or 'cosine', got "
                f'{decay!r}')
        self.kwargs = dict(
            warmup=warmup, decay=decay, stop=stop, min_scale=min_scale)
        self.total = total
        self.by_epoch = by_epoch

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not hasattr(model, 'distill_scale'):
            raise TypeError('DistillWeightHook needs an mmkd distiller as '
                            f'model, got {type(model).__name__}')
        step = runner.epoch if self.by_epoch else runner.iter
        total = self.total or (
            runner.max_epochs if self.by_epoch else runner.max_iters)
        model.distill_scale = distill_scale(step, total=total, **self.kwargs)
        runner.message_hub.update_scalar('train/distill_scale',
                                         model.distill_scale)
