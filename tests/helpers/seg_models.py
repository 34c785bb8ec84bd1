"""Tiny mmseg segmentors for tests, derived from mmseg's own model configs."""
import copy

from mmengine.config import Config
from mmengine.hub import get_config

from mmkd.utils import adapt_cfg_to_device

_BASES = dict(
    pspnet='mmseg::_base_/models/pspnet_r50-d8.py',
    fcn='mmseg::_base_/models/fcn_r50-d8.py',
    segformer='mmseg::_base_/models/segformer_mit-b0.py',
    mask2former='mmseg::mask2former/'
    'mask2former_r50_8xb2-160k_ade20k-512x512.py',
)
_CACHE = {}


def tiny_segmentor(kind: str, width: int = 8, num_classes: int = 7) -> dict:
    """A small ``kind`` segmentor (ResNet-18 at ``width`` base channels, or
    a 2-layer MiT for SegFormer; Mask2Former: see :func:`_tiny_mask2former`)
    with BN instead of SyncBN."""
    if kind not in _CACHE:
        _CACHE[kind] = get_config(_BASES[kind]).model
    model = copy.deepcopy(_CACHE[kind])
    model.pretrained = None
    model.data_preprocessor.size = (64, 64)
    if kind == 'mask2former':
        _tiny_mask2former(model, width, num_classes)
    elif kind == 'segformer':
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


def _tiny_mask2former(model, width: int, num_classes: int, queries: int = 8,
                      layers: int = 2, dims: int = 32) -> None:
    """mmseg's Mask2Former R50 config, shrunk in place: ResNet-18 at
    ``width``, ``queries`` queries, ``layers`` decoder layers, a one-layer
    pixel decoder of ``dims`` channels, 256 sampled points."""
    model.backbone.update(depth=18, base_channels=width, stem_channels=width,
                          init_cfg=None)
    head = model.decode_head
    head.update(in_channels=[width * m for m in (1, 2, 4, 8)],
                feat_channels=dims, out_channels=dims,
                num_classes=num_classes, num_queries=queries)
    head.loss_cls.class_weight = [1.0] * num_classes + [0.1]
    head.train_cfg.num_points = 256
    head.positional_encoding.num_feats = dims // 2
    pixel = head.pixel_decoder
    pixel.norm_cfg = dict(type='GN', num_groups=8)
    pixel.positional_encoding.num_feats = dims // 2
    pixel.encoder.num_layers = 1
    pixel.encoder.layer_cfg.self_attn_cfg.update(embed_dims=dims,
                                                 num_heads=4, num_points=2)
    pixel.encoder.layer_cfg.ffn_cfg.update(embed_dims=dims,
                                           feedforward_channels=2 * dims)
    decoder = head.transformer_decoder
    decoder.num_layers = layers
    for attn in ('self_attn_cfg', 'cross_attn_cfg'):
        decoder.layer_cfg[attn].update(embed_dims=dims, num_heads=4)
    decoder.layer_cfg.ffn_cfg.update(embed_dims=dims,
                                     feedforward_channels=2 * dims)
