"""Tiny mmdet detectors for tests, derived from mmdet's own model configs."""
import copy

from mmengine.hub import get_config

_BASES = dict(
    retinanet='mmdet::_base_/models/retinanet_r50_fpn.py',
    fcos='mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
    gfl='mmdet::gfl/gfl_r50_fpn_1x_coco.py',
    faster_rcnn='mmdet::_base_/models/faster-rcnn_r50_fpn.py',
)
_CACHE = {}


def tiny_detector(kind: str, width: int = 8, num_classes: int = 6) -> dict:
    """A ResNet-18 detector of ``kind`` with ``width`` base channels."""
    if kind not in _CACHE:
        _CACHE[kind] = get_config(_BASES[kind]).model
    model = copy.deepcopy(_CACHE[kind])
    ch = 4 * width
    model.backbone.update(
        depth=18,
        base_channels=width,
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None)
    model.neck.update(in_channels=[width, 2 * width, 4 * width, 8 * width],
                      out_channels=ch)
    if kind == 'faster_rcnn':
        model.rpn_head.update(in_channels=ch, feat_channels=ch)
        model.roi_head.bbox_roi_extractor.out_channels = ch
        model.roi_head.bbox_head.update(
            in_channels=ch, fc_out_channels=64, num_classes=num_classes)
    else:
        model.bbox_head.update(
            num_classes=num_classes,
            in_channels=ch,
            feat_channels=ch,
            stacked_convs=1)
    return model
