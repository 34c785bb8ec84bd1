"""timm's ImageNet train/eval image transforms as mmcv pipeline steps.

The PIL transforms come from timm's own factories
(:func:`timm.data.transforms_factory.transforms_imagenet_train` with
``separate=True`` and :func:`~timm.data.transforms_factory.
transforms_imagenet_eval`), so crops, flips, RandAugment and the eval
resize + centre crop match timm's ``train.py`` exactly. What these steps drop
is timm's final stage (``ToTensor`` / ``Normalize`` / random erasing):
normalisation happens batched in :class:`mmkd.ClsDataPreprocessor`, and the
VanillaKD recipes use no random erasing.

``results['img']`` is a ``(H, W, 3)`` uint8 array in BGR order, as mmcv's
``LoadImageFromFile`` gives it. It is turned into an RGB PIL image (timm's
RandAugment fills with the RGB ``mean`` and its colour ops assume RGB), and
the result comes back as a ``(h, w, 3)`` uint8 array in BGR order again, with
``results['img_shape']`` updated.

Seeding: timm's transforms draw from python's ``random`` (crop box,
interpolation, RandAugment's op probability and magnitude noise), numpy's
global RNG (RandAugment's op choice) and torch (flips). Under mmengine's
runner with ``randomness=dict(seed=s)``, each dataloader worker calls
``mmengine.dataset.worker_init_fn``, which seeds all three with
``s + rank * num_workers + worker_id``; with ``num_workers=0`` the transforms
use the main process' RNGs, seeded once by ``set_random_seed(s)``. Non-
persistent workers are recreated, and so reseeded identically, every epoch:
keep ``persistent_workers=True`` so that augmentations do not repeat from
epoch to epoch. Without a seed, torch seeds each worker's ``random``, numpy
and torch from a fresh base seed.
"""
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform
from PIL import Image
from timm.data import IMAGENET_DEFAULT_MEAN
from timm.data.transforms import MaybePILToTensor
from timm.data.transforms_factory import (transforms_imagenet_eval,
                                          transforms_imagenet_train)
from torchvision import transforms

from mmkd.registry import TRANSFORMS

Size = Union[int, Tuple[int, int]]

# arguments of timm's train factory that would leave the PIL/uint8 domain
_TRAIN_FORBIDDEN = ('re_prob', 're_mode', 're_count', 're_num_splits',
                    'use_prefetcher', 'normalize', 'separate', 'naflex',
                    'patchify', 'std')
_INTERPOLATIONS = ('nearest', 'bilinear', 'bicubic', 'box', 'hamming',
                   'lanczos')


def _check_size(name: str, size: Size) -> Size:
    if isinstance(size, int) and size > 0:
        return size
    if (isinstance(size, (tuple, list)) and len(size) == 2
            and all(isinstance(s, int) and s > 0 for s in size)):
        return tuple(size)
    raise ValueError(f'{name}: input_size must be a positive int or '
                     f'(height, width), got {size!r}')


class _TimmPILTransform(BaseTransform):
    """Runs ``self.pil_transform`` on ``results['img']`` (see module doc)."""

    pil_transform: transforms.Compose

    def transform(self, results: dict) -> dict:
        img = results.get('img')
        if (not isinstance(img, np.ndarray) or img.dtype != np.uint8
                or img.ndim != 3 or img.shape[2] != 3):
            got = (f'{img.dtype} array of shape {img.shape}' if isinstance(
                img, np.ndarray) else type(img).__name__)
            raise ValueError(
                f'{type(self).__name__}: results["img"] must be a (H, W, 3) '
                f'uint8 BGR array (LoadImageFromFile with color_type='
                f'"color"), got {got} for {results.get("img_path")}')
        rgb = Image.fromarray(np.ascontiguousarray(img[..., ::-1]))
        out = self.pil_transform(rgb)
        out = np.asarray(out if out.mode == 'RGB' else out.convert('RGB'))
        bgr = np.ascontiguousarray(out[..., ::-1])
        results['img'] = bgr
        results['img_shape'] = bgr.shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}({self.pil_transform.transforms})'


@TRANSFORMS.register_module()
class TimmTrainTransform(_TimmPILTransform):
    """timm's ImageNet training augmentation, without tensor conversion.

    Random-resized crop (or timm's other ``train_crop_mode``), flips,
    auto-augment (RandAugment, AutoAugment or AugMix by the ``auto_augment``
    string) and colour jitter, built by
    ``transforms_imagenet_train(..., separate=True)``; its final stage is
    dropped. As in timm, colour jitter is off whenever ``auto_augment`` is
    set (unless ``force_color_jitter=True``). Defaults are the VanillaKD
    ImageNet recipe's. Seeding under mmengine: see the module docstring.

    Args:
        input_size (int | tuple[int, int]): Output size; a pair is
            ``(height, width)`` as in timm (mmcv's ``scale`` is
            ``(width, height)``). Defaults to 224.
        scale (Sequence[float]): Range of the crop's area fraction.
            Defaults to ``(0.08, 1.0)``.
        ratio (Sequence[float]): Range of the crop's aspect ratio.
            Defaults to ``(3 / 4, 4 / 3)``.
        hflip (float): Horizontal flip probability. Defaults to 0.5.
        vflip (float): Vertical flip probability. Defaults to 0.
        auto_augment (str, optional): timm auto-augment string, e.g.
            ``'rand-m7-mstd0.5'`` (RandAugment, magnitude 7, magnitude
            noise 0.5, 2 ops). Defaults to ``'rand-m7-mstd0.5'``.
        interpolation (str): ``'bilinear'``, ``'bicubic'``, ...,
            or ``'random'`` (bilinear or bicubic per image). Defaults to
            ``'bicubic'``.
        color_jitter (float | Sequence[float], optional): Colour jitter
            strength(s). Defaults to None (none).
        mean (Sequence[float]): RGB mean in [0, 1]; only RandAugment's fill
            colour uses it here. Defaults to timm's ``IMAGENET_DEFAULT_MEAN``.
        **kwargs: Further arguments of ``transforms_imagenet_train`` (e.g.
            ``train_crop_mode``, ``color_jitter_prob``, ``grayscale_prob``,
            ``force_color_jitter``); those that would normalise, tensorise
            or erase are refused.
    """

    def __init__(self,
                 input_size: Size = 224,
                 scale: Sequence[float] = (0.08, 1.0),
                 ratio: Sequence[float] = (3. / 4., 4. / 3.),
                 hflip: float = 0.5,
                 vflip: float = 0.,
                 auto_augment: Optional[str] = 'rand-m7-mstd0.5',
                 interpolation: str = 'bicubic',
                 color_jitter: Optional[Union[float, Sequence[float]]] = None,
                 mean: Sequence[float] = IMAGENET_DEFAULT_MEAN,
                 **kwargs) -> None:
        bad = sorted(set(kwargs) & set(_TRAIN_FORBIDDEN))
        if bad:
            raise ValueError(
                f'TimmTrainTransform: {bad} not supported: the transform '
                'returns uint8 images; normalisation is the data '
                'preprocessor\'s job')
        if interpolation not in _INTERPOLATIONS + ('random', ):
            raise ValueError(f'TimmTrainTransform: unknown interpolation '
                             f'{interpolation!r}')
        primary, secondary, _ = transforms_imagenet_train(
            img_size=_check_size('TimmTrainTransform', input_size),
            scale=tuple(scale),
            ratio=tuple(ratio),
            hflip=hflip,
            vflip=vflip,
            auto_augment=auto_augment,
            interpolation=interpolation,
            color_jitter=color_jitter,
            mean=tuple(mean),
            use_prefetcher=True,
            separate=True,
            **kwargs)
        self.pil_transform = transforms.Compose(primary.transforms +
                                                secondary.transforms)


@TRANSFORMS.register_module()
class TimmEvalTransform(_TimmPILTransform):
    """timm's ImageNet evaluation resize + crop, without tensor conversion.

    With the default ``crop_mode='center'`` the shorter side is resized to
    ``floor(input_size / crop_pct)`` and the centre ``input_size`` crop is
    kept, as ``transforms_imagenet_eval`` does. Deterministic.

    Args:
        input_size (int | tuple[int, int]): Output size, ``(height,
            width)`` for a pair. Defaults to 224.
        crop_pct (float): Fraction of the resized image kept by the crop.
            Defaults to 0.95 (the VanillaKD recipes'; timm's own default is
            0.875).
        interpolation (str): ``'bilinear'``, ``'bicubic'``, ...
            Defaults to ``'bicubic'``.
        crop_mode (str, optional): timm's ``'center'``, ``'squash'`` or
            ``'border'``. Defaults to None (``'center'``).
        crop_border_pixels (int, optional): Pixels trimmed from each border
            first. Defaults to None.
        mean (Sequence[float]): RGB mean in [0, 1], the pad colour of
            ``crop_mode='border'``. Defaults to timm's
            ``IMAGENET_DEFAULT_MEAN``.
    """

    def __init__(self,
                 input_size: Size = 224,
                 crop_pct: float = 0.95,
                 interpolation: str = 'bicubic',
                 crop_mode: Optional[str] = None,
                 crop_border_pixels: Optional[int] = None,
                 mean: Sequence[float] = IMAGENET_DEFAULT_MEAN) -> None:
        if not 0 < crop_pct <= 1:
            raise ValueError(
                f'TimmEvalTransform: crop_pct must be in (0, 1], got '
                f'{crop_pct}')
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f'TimmEvalTransform: unknown interpolation '
                             f'{interpolation!r}')
        if crop_mode not in (None, 'center', 'squash', 'border'):
            raise ValueError(
                f'TimmEvalTransform: crop_mode must be "center", "squash" '
                f'or "border", got {crop_mode!r}')
        full = transforms_imagenet_eval(
            img_size=_check_size('TimmEvalTransform', input_size),
            crop_pct=crop_pct,
            crop_mode=crop_mode,
            crop_border_pixels=crop_border_pixels,
            interpolation=interpolation,
            mean=tuple(mean),
            use_prefetcher=True)
        # with use_prefetcher timm ends in MaybePILToTensor: drop it
        steps = [
            t for t in full.transforms if not isinstance(t, MaybePILToTensor)
        ]
        self.pil_transform = transforms.Compose(steps)
