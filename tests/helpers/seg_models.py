"""Tiny mmseg segmentors for tests, derived from mmseg's own model configs."""
import copy

from mmengine.config import Config
from mmengine.hub import get_config

from mmkd.utils import adapt_cfg_to_device

_BASES = dict(
    pspnet='mmseg::_base_/models/pspnet_r50-d8.py',
    fcn='mmseg::_base_/models/fcn_r50-d8.py',
    segformer='mmseg::_base_/models/segformer_mit-b0.py',
)
_CACHE = {}


def tiny_segmentor(kind: str, width: int = 8, num_classes: int = 7) -> dict:
    """A small ``kind`` segmentor (ResNet-18 at ``width`` base channels, or
    a 2-layer MiT for SegFormer) with BN instead of SyncBN."""
    if kind not in _CACHE:
        _CACHE[kind] = get_config(_BASES[kind]).model
    model = copy.deepcopy(_CACHE[kind])
    model.pretrained = None
    model.data_preprocessor.size = (64, 64)
    if kind == 'segformer':
        model.backbone.update(embed_dims=width, num_heads=[1, 2, 5, 8],
                              num_layers=[1, 1, 1, 1])
        model.decode_head.update(in_channels=[width * m for m in (1, 2, 5, 8)],
                                 channels=4 * width, num_classes=num_classes)
    else:
        model.backbone.update(depth=18, base_channels=width,
                              stem_channels=width)
        model.decode_head.update(in_channels=8 * width, channels=2 * width,
                                 num_classes=num_classes)
        model.auxiliary_head.update(in_channels=4 * width, channels=width,
                                    num_classes=num_classes)
    cfg = Config(dict(model=model))
    adapt_cfg_to_device(cfg)  # SyncBN -> BN without CUDA
    return cfg.model
