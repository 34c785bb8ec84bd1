"""Auxiliary classifier heads on intermediate stages of a timm student.

Deep supervision for classifiers (VanillaKD journal extension; the head
design follows OFA-KD, https://arxiv.org/abs/2310.19444, by the same
authors): a head on an intermediate CNN stage reduces the map to the final
stage's stride with separable downsampling blocks, pools and classifies; a
head on a ViT block normalises and pools its tokens and classifies. In the
``'full'`` mode the blocks double the channels as OFA-KD's do; the default
``'light'`` mode keeps the stage's width (about a fifth of the cost on a
ResNet-50 student). The heads live in the distiller and never in the
exported student; ``init_weights()`` initialises them as timm initialises a
classifier (truncated normal, std 0.02, for the linear layer; Kaiming for
convolutions).
"""
import math
from typing import List

import torch
import torch.nn as nn
from mmengine.model import BaseModule, ModuleList


def sep_down_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Depthwise 3x3 stride 2, pointwise, BN, ReLU, depthwise 3x3,
    pointwise, BN, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 3, 2, 1, groups=in_channels,
                  bias=False),
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, 1, 1, groups=out_channels,
                  bias=False),
        nn.Conv2d(out_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class CNNStageHead(BaseModule):
    """``num_down`` separable downsampling blocks, global pool, linear.

    Args:
        in_channels (int): Channels of the stage's feature map.
        num_classes (int): Output classes.
        num_down (int): Downsampling blocks (``log2`` of the final stage's
            stride over this stage's).
        widen (bool): Double the channels in each block (OFA-KD's head).
            Defaults to False (keep the stage's width).
    """

    def __init__(self, in_channels: int, num_classes: int, num_down: int,
                 widen: bool = False) -> None:
        super().__init__(init_cfg=[
            dict(type='Kaiming', layer='Conv2d', mode='fan_out',
                 nonlinearity='relu'),
            dict(type='TruncNormal', layer='Linear', std=0.02, bias=0.0),
        ])
        blocks, ch = [], in_channels
        for _ in range(num_down):
            out = ch * 2 if widen else ch
            blocks.append(sep_down_block(ch, out))
            ch = out
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.blocks(x).mean((2, 3)))


class TokenHead(BaseModule):
    """LayerNorm of the mean patch token, then linear (ViT blocks).

    Args:
        in_channels (int): Embedding width.
        num_classes (int): Output classes.
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__(init_cfg=dict(
            type='TruncNormal', layer='Linear', std=0.02, bias=0.0))
        self.norm = nn.LayerNorm(in_channels)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (B, C, H, W) token grid as timm's forward_intermediates gives it
        return self.fc(self.norm(x.mean((2, 3))))


def build_stage_heads(feature_info: List[dict], stages: List[int],
                      num_classes: int, kind: str = 'auto',
                      mode: str = 'light') -> ModuleList:
    """One head per listed stage of a timm model's ``feature_info``.

    Args:
        feature_info (list[dict]): The timm model's ``feature_info``
            (``num_chs``, ``reduction`` per feature index).
        stages (list[int]): Feature indices to supervise.
        num_classes (int): Output classes.
        kind (str): ``'cnn'``, ``'vit'`` or ``'auto'`` (``'vit'`` when all
            features share one stride, as a plain ViT's blocks do).
            Defaults to ``'auto'``.
        mode (str): ``'light'`` (CNN heads keep the stage's width) or
            ``'full'`` (channels double per block). Defaults to ``'light'``.
    """
    if mode not in ('light', 'full'):
        raise ValueError("deep_supervision.mode must be 'light' or 'full', "
                         f'got {mode!r}')
    if kind == 'auto':
        kind = 'vit' if len({f['reduction']
                             for f in feature_info}) == 1 else 'cnn'
    if kind not in ('cnn', 'vit'):
        raise ValueError(f'deep_supervision.head: unknown kind "{kind}" '
                         "(expected 'cnn', 'vit' or 'auto')")
    final = feature_info[-1]['reduction']
    heads = []
    for s in stages:
        info = feature_info[s]
        if kind == 'vit':
            heads.append(TokenHead(info['num_chs'], num_classes))
        else:
            num_down = int(round(math.log2(final / info['reduction'])))
            heads.append(CNNStageHead(info['num_chs'], num_classes,
                                      num_down, widen=mode == 'full'))
    return ModuleList(heads)
