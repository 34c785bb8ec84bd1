"""Classification data preprocessor with timm's batch mixup / cutmix.

mixup: https://arxiv.org/abs/1710.09412; CutMix: https://arxiv.org/abs/
1905.04899. The mixing is :class:`timm.data.Mixup` itself, applied to the
normalised float batch, so lambda sampling, box placement, lambda correction
and the smoothed mixed targets are timm's.
"""
from typing import Optional, Sequence, Union

import torch
from mmengine.model import ImgDataPreprocessor
from timm.data import Mixup
from timm.data.mixup import mixup_target

from mmkd.registry import MODELS


@MODELS.register_module()
class ClsDataPreprocessor(ImgDataPreprocessor):
    """Normalise and stack images; in training, mix them and add soft targets.

    At every call this does what :class:`~mmengine.model.ImgDataPreprocessor`
    does (device, ``bgr_to_rgb``, ``(x - mean) / std``, stacking). With
    ``training=True`` it then gives every data sample a ``gt_score``: a
    float tensor ``[num_classes]`` summing to 1, computed by timm
    (``off = label_smoothing / num_classes`` on every class, ``1 -
    label_smoothing + off`` on the true one, then mixed with the flipped
    batch's targets by ``lam`` when mixup/cutmix is on). ``gt_label`` stays
    as it is. The mixed images are the returned ``inputs``, so a distiller
    that feeds this tensor to student and teacher shows both the same mixed
    batch. Validation and test (``training=False``) neither mix nor touch
    ``gt_score``.

    timm's ``Mixup`` pairs sample ``i`` with sample ``B - 1 - i`` and needs
    an even batch size ``B``: with mixup or cutmix on, an odd training batch
    raises a ValueError (use an even ``batch_size`` and ``drop_last=True``).

    Args:
        num_classes (int): Length of ``gt_score``.
        mean (Sequence[float], optional): Per-channel mean, in the channel
            order after ``bgr_to_rgb``. Defaults to None (no normalisation).
        std (Sequence[float], optional): Per-channel std. Defaults to None.
        bgr_to_rgb (bool): Flip BGR inputs to RGB. Defaults to False.
        rgb_to_bgr (bool): Flip RGB inputs to BGR. Defaults to False.
        pad_size_divisor (int): Pad sizes to a multiple of this. Defaults
            to 1.
        pad_value (float): Padding value. Defaults to 0.
        non_blocking (bool): Non-blocking device transfer. Defaults to
            False.
        mixup_alpha (float): Beta(alpha, alpha) of mixup's lambda; mixup is
            on if > 0. Defaults to 0.
        cutmix_alpha (float): Beta(alpha, alpha) of cutmix's lambda; cutmix
            is on if > 0. Defaults to 0.
        cutmix_minmax (Sequence[float], optional): Min/max box side as a
            fraction of the image; turns cutmix on and replaces
            ``cutmix_alpha``. Defaults to None.
        prob (float): Probability of mixing a batch (element, pair).
            Defaults to 1.0.
        switch_prob (float): Probability of cutmix rather than mixup when
            both are on. Defaults to 0.5.
        mode (str): ``'batch'`` (one lambda per batch), ``'pair'`` or
            ``'elem'``. Defaults to ``'batch'``.
        correct_lam (bool): Recompute lambda from the clipped cutmix box.
            Defaults to True.
        label_smoothing (float): Smoothing of the targets, mixed or not.
            Defaults to 0.
    """

    def __init__(self,
                 num_classes: int,
                 mean: Optional[Sequence[Union[float, int]]] = None,
                 std: Optional[Sequence[Union[float, int]]] = None,
                 bgr_to_rgb: bool = False,
                 rgb_to_bgr: bool = False,
                 pad_size_divisor: int = 1,
                 pad_value: Union[float, int] = 0,
                 non_blocking: Optional[bool] = False,
                 mixup_alpha: float = 0.,
                 cutmix_alpha: float = 0.,
                 cutmix_minmax: Optional[Sequence[float]] = None,
                 prob: float = 1.0,
                 switch_prob: float = 0.5,
                 mode: str = 'batch',
                 correct_lam: bool = True,
                 label_smoothing: float = 0.) -> None:
        super().__init__(
            mean=mean,
            std=std,
            pad_size_divisor=pad_size_divisor,
            pad_value=pad_value,
            bgr_to_rgb=bgr_to_rgb,
            rgb_to_bgr=rgb_to_bgr,
            non_blocking=non_blocking)
        if not (isinstance(num_classes, int) and num_classes > 0):
            raise ValueError('ClsDataPreprocessor: num_classes must be a '
                             f'positive int, got {num_classes!r}')
        if mode not in ('batch', 'pair', 'elem'):
            raise ValueError('ClsDataPreprocessor: mode must be "batch", '
                             f'"pair" or "elem", got {mode!r}')
        if not 0 <= label_smoothing < 1:
            raise ValueError('ClsDataPreprocessor: label_smoothing must be '
                             f'in [0, 1), got {label_smoothing}')
        if cutmix_minmax is not None and len(cutmix_minmax) != 2:
            raise ValueError('ClsDataPreprocessor: cutmix_minmax must be '
                             f'(min, max), got {cutmix_minmax!r}')
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing
        self.mixup: Optional[Mixup] = None
        if mixup_alpha > 0 or cutmix_alpha > 0 or cutmix_minmax is not None:
            self.mixup = Mixup(
                mixup_alpha=mixup_alpha,
                cutmix_alpha=cutmix_alpha,
                cutmix_minmax=cutmix_minmax,
                prob=prob,
                switch_prob=switch_prob,
                mode=mode,
                correct_lam=correct_lam,
                label_smoothing=label_smoothing,
                num_classes=num_classes)

    def _labels(self, data_samples: Optional[list]) -> torch.Tensor:
        """The batch's class indices, one per sample, checked."""
        if not data_samples:
            raise ValueError('ClsDataPreprocessor: training needs '
                             'data_samples with gt_label, got none')
        labels = []
        for i, sample in enumerate(data_samples):
            label = sample.get('gt_label', None)
            if label is None:
                raise ValueError(
                    f'ClsDataPreprocessor: data sample {i} has no gt_label')
            label = torch.as_tensor(label).reshape(-1)
            if label.numel() != 1:
                raise ValueError(
                    f'ClsDataPreprocessor: data sample {i} gt_label must '
                    f'hold one class index, got shape {tuple(label.shape)}')
            labels.append(label)
        labels = torch.cat(labels).long()
        bad = (labels < 0) | (labels >= self.num_classes)
        if bad.any():
            i = int(bad.nonzero()[0])
            raise ValueError(
                f'ClsDataPreprocessor: data sample {i} gt_label '
                f'{int(labels[i])} is outside num_classes {self.num_classes}')
        return labels

    def forward(self, data: dict, training: bool = False) -> dict:
        data = super().forward(data, training)
        if not training:
            return data
        inputs, samples = data['inputs'], data['data_samples']
        labels = self._labels(samples).to(inputs.device)
        if self.mixup is not None:
            if len(inputs) % 2:
                raise ValueError(
                    'ClsDataPreprocessor: mixup/cutmix needs an even batch '
                    f'size (timm pairs sample i with B-1-i), got batch size '
                    f'{len(inputs)}; use an even batch_size and '
                    'drop_last=True in train_dataloader')
            inputs, scores = self.mixup(inputs, labels)
        else:
            scores = mixup_target(
                labels, self.num_classes, smoothing=self.label_smoothing)
        for sample, score in zip(samples, scores):
            sample.gt_score = score
        data['inputs'] = inputs
        return data
