"""Repeated-augmentation sampler (Hoffer et al., https://arxiv.org/abs/
1901.09335; DeiT's RASampler), timm's implementation under mmengine."""
import math
from typing import Optional, Sized, Union

import torch
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.logging import print_log
from timm.data.distributed_sampler import \
    RepeatAugSampler as TimmRepeatAugSampler

from mmkd.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class RepeatAugSampler(TimmRepeatAugSampler):
    """timm's :class:`~timm.data.distributed_sampler.RepeatAugSampler`,
    buildable by mmengine's dataloader builder.

    Each epoch the dataset indices are shuffled, each index is repeated
    ``num_repeats`` times in a row and the repeated list is dealt to the
    ranks round-robin, so the copies of one image go to different ranks
    (and get different augmentations there). As in timm and DeiT, each rank
    then keeps only ``len(self)`` samples: by default about
    ``len(dataset) / world_size`` (rounded down to a multiple of
    ``selected_round`` for datasets at least that large), so an epoch still
    costs one pass over the dataset's worth of samples; ``selected_round=0,
    selected_ratio=world_size / num_repeats`` keeps the whole repeated list.

    **One process.** timm refuses repeated augmentation outside distributed
    training: in one process the copies of an image would sit side by side
    in one batch and an epoch would see only ``1 / num_repeats`` of the
    images. Here a world size of 1 switches the repetition off (logged):
    each epoch is one seeded shuffle of the whole dataset, every image once,
    as timm trains without ``--aug-repeats`` (mmengine's ``DefaultSampler``
    with ``shuffle=True`` gives the same set per epoch).

    Rank and world size come from :func:`mmengine.dist.get_dist_info`
    unless given. ``seed`` is honoured: timm seeds its permutation with the
    epoch alone, this class with ``seed + epoch`` (as mmengine's
    ``DefaultSampler`` does); every rank must use the same seed, and a seed
    of None is drawn on rank 0 and shared by :func:`sync_random_seed`.
    mmengine's loops call :meth:`set_epoch` each epoch.

    Args:
        dataset (Sized): The dataset (mmengine passes it).
        num_repeats (int | float): Copies of each index per epoch.
            Defaults to 3.
        shuffle (bool): Shuffle the indices each epoch. Defaults to True.
        seed (int, optional): Base of the shuffling seed (mmengine passes
            the runner's seed). Defaults to None.
        selected_round (int): Round the per-rank sample count down to a
            multiple of this for datasets at least this large; 0 disables.
            Defaults to 256 (timm's).
        selected_ratio (float): Divides the dataset size to give the
            per-rank sample count; 0 means the world size. Defaults to 0.
        num_replicas (int, optional): World size, for tests and manual use.
            Defaults to None (from ``get_dist_info()``).
        rank (int, optional): This process' rank. Defaults to None (from
            ``get_dist_info()``).
    """

    def __init__(self,
                 dataset: Sized,
                 num_repeats: Union[int, float] = 3,
                 shuffle: bool = True,
                 seed: Optional[int] = None,
                 selected_round: int = 256,
                 selected_ratio: float = 0.,
                 num_replicas: Optional[int] = None,
                 rank: Optional[int] = None) -> None:
        dist_rank, dist_world = get_dist_info()
        rank = dist_rank if rank is None else rank
        num_replicas = dist_world if num_replicas is None else num_replicas
        if not 0 <= rank < num_replicas:
            raise ValueError(f'RepeatAugSampler: rank {rank} is outside a '
                             f'world of size {num_replicas}')
        if not (num_repeats > 0 and math.isfinite(num_repeats)):
            raise ValueError('RepeatAugSampler: num_repeats must be > 0, got '
                             f'{num_repeats}')
        if len(dataset) == 0:
            raise ValueError('RepeatAugSampler: the dataset is empty')
        super().__init__(
            dataset,
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            num_repeats=num_repeats,
            selected_round=selected_round,
            selected_ratio=selected_ratio)
        self.seed = sync_random_seed() if seed is None else seed
        if self.num_replicas == 1 and self.num_repeats != 1:
            print_log(
                f'RepeatAugSampler: one process, so repeated augmentation '
                f'(num_repeats={num_repeats}) is off: each epoch shuffles '
                f'the {len(dataset)} images once (timm refuses repeats '
                'outside distributed training)',
                logger='current')

    @property
    def repeats_on(self) -> bool:
        """Whether the copies of an image are dealt to several processes."""
        return self.num_replicas > 1

    def __len__(self) -> int:
        if not self.repeats_on:
            return len(self.dataset)
        return super().__len__()

    def describe(self) -> str:
        """One line on what an epoch yields on this process."""
        if not self.repeats_on:
            return (f'RepeatAugSampler: one process, repeats off: '
                    f'{len(self)} of {len(self.dataset)} samples per epoch, '
                    f'each once (shuffle={self.shuffle})')
        return (f'RepeatAugSampler: {self.num_repeats} copies of each image '
                f'dealt to {self.num_replicas} processes; {len(self)} of '
                f'{len(self.dataset)} samples per process per epoch')

    def __iter__(self):
        if not self.repeats_on:
            if not self.shuffle:
                return iter(range(len(self.dataset)))
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            order = torch.randperm(len(self.dataset), generator=g)
            return iter(order.tolist())
        # timm's __iter__ builds the whole index list from
        # torch.Generator().manual_seed(self.epoch) before returning; run it
        # with the seeded epoch and restore the true one
        epoch = self.epoch
        self.epoch = self.seed + epoch
        try:
            return super().__iter__()
        finally:
            self.epoch = epoch
