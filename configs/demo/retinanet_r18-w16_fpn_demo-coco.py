# RetinaNet with a ResNet-18 of quarter width (base_channels=16, FPN/head
# 64 ch, ~1 M params): the demo's student, trained 300 iterations from
# scratch (the baseline the distilled students are compared with).
_base_ = './retinanet_r18-w32_fpn_demo-coco.py'

model = dict(
    backbone=dict(base_channels=16),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=64),
    bbox_head=dict(in_channels=64, feat_channels=64))

max_iters = 200
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(
        type='CosineAnnealingLR',
        by_epoch=False,
        begin=50,
        end=max_iters,
        T_max=max_iters - 50,
        eta_min=2e-5)
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
