"""Keep a recipe's images per optimizer step on any number of processes."""
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapper

from mmkd.registry import HOOKS


def loader_batch_size(loader) -> int:
    """Images per process and iteration of a built training dataloader:
    its ``batch_size``, or its batch sampler's (mmdet's
    ``AspectRatioBatchSampler`` leaves the loader's ``batch_size`` None)."""
    if loader.batch_size is not None:
        return loader.batch_size
    return loader.batch_sampler.batch_size


def accumulation_steps(batch_size: int, world_size: int,
                       per_process: int) -> int:
    """Gradient-accumulation steps that make ``world_size x per_process x
    steps`` equal ``batch_size``.

    Raises:
        ValueError: if ``batch_size`` is not a multiple of
            ``world_size x per_process``; the message names both.
    """
    per_step = world_size * per_process
    if per_step <= 0 or batch_size % per_step:
        raise ValueError(
            f'EffectiveBatchHook: the recipe\'s batch_size={batch_size} is '
            f'not a multiple of world size x train_dataloader.batch_size = '
            f'{world_size} x {per_process} = {per_step}; choose a '
            'train_dataloader.batch_size (or GPU count) that divides it')
    return batch_size // per_step


@HOOKS.register_module()
class EffectiveBatchHook(Hook):
    """Accumulate gradients so that every optimizer step sees ``batch_size``
    images, whatever the number of processes.

    Before training it sets the optimizer wrapper's gradient accumulation
    (mmengine's ``OptimWrapper(accumulative_counts=...)``, which also
    divides the loss and skips DDP's gradient sync between updates) to
    ``batch_size / (world size x train_dataloader.batch_size)``. The
    learning rate, its schedule (in epochs) and the optimizer steps per
    epoch then stay those of the published recipe; only batch-norm
    statistics see the per-process batch.

    mmengine's ``--auto-scale-lr`` (``auto_scale_lr.enable``) scales the lr
    by ``world size x batch per process / base_batch_size`` and does not
    know about accumulation, so with accumulation it would shrink the lr of
    a batch that is kept: the combination is refused. To train on a smaller
    batch instead, remove this hook
    (``--cfg-options default_hooks.effective_batch=None``).

    Args:
        batch_size (int): Images per optimizer step, summed over processes.
    """

    priority = 'VERY_HIGH'

    def __init__(self, batch_size: int) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError('EffectiveBatchHook: batch_size must be a '
                             f'positive int, got {batch_size!r}')
        self.batch_size = batch_size

    def before_run(self, runner) -> None:
        wrapper = runner.optim_wrapper
        if not isinstance(wrapper, OptimWrapper):
            return  # test / val runs: nothing is optimised
        per_process = loader_batch_size(runner.train_dataloader)
        steps = accumulation_steps(self.batch_size, runner.world_size,
                                   per_process)
        configured = wrapper._accumulative_counts
        if configured not in (1, steps):
            raise ValueError(
                'EffectiveBatchHook: optim_wrapper.accumulative_counts='
                f'{configured} but {steps} step(s) give batch_size='
                f'{self.batch_size} on {runner.world_size} process(es) x '
                f'{per_process}; leave accumulative_counts unset')
        scale_cfg = runner.auto_scale_lr or {}
        if steps > 1 and scale_cfg.get('enable', False):
            raise ValueError(
                'EffectiveBatchHook: --auto-scale-lr (auto_scale_lr.enable) '
                f'would scale the lr for {runner.world_size} x {per_process}'
                f' images, but this recipe keeps {self.batch_size} images '
                f'per optimizer step by accumulating {steps} steps, so its '
                'lr needs no scaling: drop --auto-scale-lr, or remove the '
                'hook (--cfg-options default_hooks.effective_batch=None) to '
                'train on the smaller batch')
        # mmengine reads this attribute in initialize_count_status(), which
        # the runner calls after before_run (train())
        wrapper._accumulative_counts = steps
