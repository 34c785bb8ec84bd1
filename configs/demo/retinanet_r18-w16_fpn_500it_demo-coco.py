# RetinaNet with a ResNet-18 of quarter width (base_channels=16, FPN/head
# 64 ch, ~1 M params): the demo's student-sized detector.
_base_ = './retinanet_r18-w32_fpn_500it_demo-coco.py'

model = dict(
    backbone=dict(base_channels=16),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=64),
    bbox_head=dict(in_channels=64, feat_channels=64))
