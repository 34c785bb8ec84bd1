"""Repeated-augmentation sampler (Hoffer et al., https://arxiv.org/abs/
1901.09335; DeiT's RASampler), timm's implementation under mmengine."""
import math
from typing import Optional, Sized, Union

from mmengine.dist import get_dist_info, sync_random_seed
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

    def __iter__(self):
        # timm's __iter__ builds the whole index list from
        # torch.Generator().manual_seed(self.epoch) before returning; run it
        # with the seeded epoch and restore the true one
        epoch = self.epoch
        self.epoch = self.seed + epoch
        try:
            return super().__iter__()
        finally:
            self.epoch = epoch
