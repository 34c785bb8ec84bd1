"""Packing of classification samples for the mm runner."""
from typing import Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import BaseDataElement

from mmkd.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackClsInputs(BaseTransform):
    """Pack an image and its class label into ``inputs`` and ``data_samples``.

    ``inputs`` is the image as a uint8 ``(C, H, W)`` tensor (BGR, as loaded);
    ``data_samples`` is a :class:`BaseDataElement` with ``gt_label`` (a
    1-element long tensor) and the listed meta keys.

    Args:
        meta_keys (Sequence[str]): Keys of ``results`` copied into the
            sample's metainfo when present. Defaults to
            ``('img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip')``.
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('img_path', 'ori_shape',
                                             'img_shape', 'scale_factor',
                                             'flip')) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.ndim == 2:
            img = img[..., None]
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        sample = BaseDataElement(metainfo={
            k: results[k]
            for k in self.meta_keys if k in results
        })
        if 'gt_label' in results:
            sample.gt_label = torch.as_tensor(
                results['gt_label'], dtype=torch.long).reshape(-1)
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(meta_keys={self.meta_keys})'
