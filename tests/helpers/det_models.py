"""Tiny mmdet detectors for tests, derived from mmdet's own model configs."""
import copy

from mmengine.hub import get_config

_BASES = dict(
    retinanet='mmdet::_base_/models/retinanet_r50_fpn.py',
    fcos='mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
    gfl='mmdet::gfl/gfl_r50_fpn_1x_coco.py',
    faster_rcnn='mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    atss='mmdet::atss/atss_r50_fpn_1x_coco.py',
    tood='mmdet::tood/tood_r50_fpn_1x_coco.py',
    cascade_rcnn='mmdet::_base_/models/cascade-rcnn_r50_fpn.py',
    htc='mmdet::htc/htc_r50_fpn_1x_coco.py',
    rtmdet='mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
    yolox='mmdet::yolox/yolox_tiny_8xb8-300e_coco.py',
)
#: single-stage families on CSP backbones (widths scale by widen_factor)
_CSP = ('rtmdet', 'yolox')
_CACHE = {}


def tiny_detector(kind: str, width: int = 8, num_classes: int = 6) -> dict:
    """A ResNet-18 detector of ``kind`` with ``width`` base channels (CSP
    families: their backbone at ``width / 64`` of its width, one block per
    stage), BN instead of SyncBN."""
    if kind not in _CACHE:
        _CACHE[kind] = get_config(_BASES[kind]).model
    model = copy.deepcopy(_CACHE[kind])
    ch = 4 * width
    if kind in _CSP:
        return _tiny_csp(kind, model, width, num_classes)
    model.backbone.update(
        depth=18,
        base_channels=width,
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None)
    model.neck.update(in_channels=[width, 2 * width, 4 * width, 8 * width],
                      out_channels=ch)
    if kind in ('faster_rcnn', 'cascade_rcnn', 'htc'):
        model.rpn_head.update(in_channels=ch, feat_channels=ch)
        roi = model.roi_head
        for key in ('bbox_roi_extractor', 'mask_roi_extractor'):
            if key in roi:
                roi[key].out_channels = ch
        heads = roi.bbox_head if isinstance(roi.bbox_head, list) \
            else [roi.bbox_head]
        for head in heads:
            head.update(in_channels=ch, fc_out_channels=64,
                        num_classes=num_classes)
        for head in roi.get('mask_head') or []:
            head.update(in_channels=ch, conv_out_channels=ch,
                        num_classes=num_classes)
        if 'semantic_head' in roi:
            roi.semantic_head.update(in_channels=ch, conv_out_channels=ch)
            roi.semantic_roi_extractor.out_channels = ch
    else:
        model.bbox_head.update(
            num_classes=num_classes,
            in_channels=ch,
            feat_channels=ch,
            stacked_convs=1)
    return model


def _tiny_csp(kind: str, model, width: int, num_classes: int) -> dict:
    from mmengine.config import Config

    from mmkd.utils import adapt_cfg_to_device
    widen = width / 64
    model.backbone.update(deepen_factor=0.167, widen_factor=widen,
                          init_cfg=None)
    chans = [int(c * widen) for c in (256, 512, 1024)]
    model.neck.update(in_channels=chans, out_channels=4 * width,
                      num_csp_blocks=1)
    model.bbox_head.update(num_classes=num_classes, in_channels=4 * width,
                           feat_channels=4 * width, stacked_convs=1)
    model.data_preprocessor.pop('batch_augments', None)
    cfg = Config(dict(model=model))
    adapt_cfg_to_device(cfg)  # SyncBN -> BN without CUDA
    return cfg.model
