"""Say at the start of training what the run really does at its scale."""
from typing import List

from mmengine.dataset import InfiniteSampler
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapperDict
from torch.utils.data import BatchSampler

from mmkd.registry import HOOKS
from .effective_batch_hook import loader_batch_size


def describe_sampler(sampler, dataset_len: int, world_size: int) -> str:
    """One line on what a training sampler yields per process and epoch.

    Args:
        sampler: The sampler (its own ``describe()`` is used if it has one,
            as :class:`mmkd.RepeatAugSampler`).
        dataset_len (int): Samples in the dataset.
        world_size (int): Number of processes.

    Returns:
        str: e.g. ``'DefaultSampler (shuffle=True): 4 of 8 samples per
        process'``.
    """
    describe = getattr(sampler, 'describe', None)
    if callable(describe):
        return describe()
    name = type(sampler).__name__
    shuffle = getattr(sampler, 'shuffle', None)
    shuffled = '' if shuffle is None else f' (shuffle={shuffle})'
    if isinstance(sampler, InfiniteSampler):
        count = (f'endless passes over {dataset_len} samples, each process '
                 f'taking 1/{world_size} of every pass')
    else:
        try:
            count = f'{len(sampler)} of {dataset_len} samples per process'
        except TypeError:
            count = f'{dataset_len} samples'
    return f'{name}{shuffled}: {count}'


def run_info(runner) -> List[str]:
    """The lines :class:`RunInfoHook` logs: batch, lr and sampler.

    Args:
        runner (Runner): A runner whose optimizer wrapper, parameter
            schedulers and training dataloader are built.

    Returns:
        list[str]: The batch line (processes x images x accumulation =
        images per optimizer step), the lr line (before the schedule, after
        ``--auto-scale-lr``; and at the first iteration) and the sampler
        line.
    """
    wrapper = runner.optim_wrapper
    wrappers = list(wrapper.values()) if isinstance(
        wrapper, OptimWrapperDict) else [wrapper]
    steps = max(getattr(w, '_accumulative_counts', 1) for w in wrappers)
    loader = runner.train_dataloader
    world = runner.world_size
    per_process = loader_batch_size(loader)
    lines = [
        f'batch: {world} process(es) x {per_process} images x {steps} '
        f'accumulation step(s) = {world * per_process * steps} images per '
        'optimizer step'
    ]
    peaks = sorted({
        group.get('initial_lr', group['lr'])
        for w in wrappers for group in w.optimizer.param_groups
    })
    now = sorted({
        group['lr']
        for w in wrappers for group in w.optimizer.param_groups
    })
    scale = runner.auto_scale_lr or {}
    if scale.get('enable', False):
        how = (f'auto-scaled (mmengine, linear) from base batch '
               f'{scale["base_batch_size"]} to {world * per_process}')
    else:
        how = 'not auto-scaled'
    lines.append(f'lr: {_values(peaks)} before the schedule ({how}); '
                 f'{_values(now)} at the first iteration')
    # with a batch sampler (mmdet's AspectRatioBatchSampler) the loader's
    # own `sampler` is a placeholder; the real one sits in the batch sampler
    batches = loader.batch_sampler
    sampler = getattr(batches, 'sampler', loader.sampler)
    line = describe_sampler(sampler, len(loader.dataset), world)
    if type(batches) is not BatchSampler:
        line += f', batched by {type(batches).__name__}'
    lines.append('sampler: ' + line)
    return lines


def _values(values: list) -> str:
    text = ', '.join(f'{v:.6g}' for v in values)
    return text if len(values) == 1 else f'[{text}] (per parameter group)'


@HOOKS.register_module()
class RunInfoHook(Hook):
    """Log, when training starts, the effective batch (world size x batch
    per process x gradient accumulation), the learning rate after
    ``--auto-scale-lr`` and what the training sampler does, so that a run
    on 1, 2 or 8 processes says what it trains with.

    Runs after every other ``before_train`` step (lowest priority), once the
    optimizer wrapper, its accumulation and the schedulers are set up.
    """

    priority = 'LOWEST'

    def before_train(self, runner) -> None:
        for line in run_info(runner):
            runner.logger.info(f'[mmkd] {line}')
