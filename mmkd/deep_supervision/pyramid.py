"""Turn one intermediate feature map into a pyramid at given strides.

An auxiliary dense head needs features at every stride the detector's head
predicts at. :class:`StageToPyramid` makes them from a single backbone stage:
a 1x1 lateral convolution to the head's width, then for each target stride
either the lateral map itself (same stride), a bilinear upsampling (finer
strides) or a chain of stride-2 3x3 convolutions (coarser strides, as
RetinaNet's extra FPN levels).
"""
from typing import List, Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule, ModuleList


class StageToPyramid(BaseModule):
    """One feature map at ``in_stride`` -> maps at ``out_strides``.

    Args:
        in_channels (int): Channels of the input map.
        out_channels (int): Channels of every output map.
        in_stride (int): Stride of the input map.
        out_strides (Sequence[int]): Strides of the outputs, ascending powers
            of two times (or divisors of) ``in_stride``.
        norm_cfg (dict, optional): Norm of the convolutions; the detection
            distiller passes the student's own (its head's, else its
            backbone's). Defaults to ``dict(type='BN')``.
        init_cfg (dict, optional): mmengine init config. Defaults to None
            (mmcv's ``ConvModule`` init).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 in_stride: int,
                 out_strides: Sequence[int],
                 norm_cfg: dict = dict(type='BN'),
                 init_cfg: dict = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_stride = in_stride
        self.out_strides = list(out_strides)
        self.lateral = ConvModule(
            in_channels, out_channels, 1, norm_cfg=norm_cfg, act_cfg=None)
        self.downs = ModuleList()
        stride = in_stride
        for s in self.out_strides:
            if s < in_stride:
                if in_stride % s:
                    raise ValueError(f'StageToPyramid: stride {s} does not '
                                     f'divide the input stride {in_stride}')
                continue
            while stride < s:
                self.downs.append(
                    ConvModule(
                        out_channels,
                        out_channels,
                        3,
                        stride=2,
                        padding=1,
                        norm_cfg=norm_cfg,
                        order=('act', 'conv', 'norm')))
                stride *= 2
            if stride != s:
                raise ValueError(f'StageToPyramid: cannot reach stride {s} '
                                 f'from stride {in_stride} by factors of 2')

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        lat = self.lateral(x)
        outs, cur, stride, k = [], lat, self.in_stride, 0
        for s in self.out_strides:
            if s < self.in_stride:
                size = (x.shape[-2] * self.in_stride // s,
                        x.shape[-1] * self.in_stride // s)
                outs.append(F.interpolate(lat, size=size, mode='bilinear',
                                          align_corners=False))
                continue
            while stride < s:
                cur = self.downs[k](cur)
                k += 1
                stride *= 2
            outs.append(cur)
        return outs
