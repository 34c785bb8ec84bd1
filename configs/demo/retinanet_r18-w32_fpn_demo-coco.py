# RetinaNet with a ResNet-18 of half width (base_channels=32, FPN/head 128 ch,
# ~4 M params), trained from scratch on the generated demo COCO set.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/demo_coco.py', '../_base_/schedules/demo_adamw_cosine.py',
    'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        depth=18,
        base_channels=32,
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[32, 64, 128, 256], out_channels=128),
    bbox_head=dict(num_classes=6, in_channels=128, feat_channels=128))
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(by_epoch=False, interval={{_base_.max_iters}}))
log_processor = dict(by_epoch=False)
