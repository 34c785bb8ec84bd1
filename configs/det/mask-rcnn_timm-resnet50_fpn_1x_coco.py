# Mask R-CNN with a distilled timm ResNet-50 backbone, FPN, 1x schedule, COCO.
# This is the downstream check of a distilled ImageNet classifier: mmdet's
# Mask R-CNN R50 1x config (dataset, schedule, runtime, heads unchanged) with
# its torchvision ResNet-50 replaced by timm's `resnet50` (the same
# architecture: stride on the 3x3 conv, C2..C5 = 256/512/1024/2048 channels
# at strides 4..32) through `mmkd.TimmBackbone`. As mmdet's R50 config: stem
# and layer1 frozen (`frozen_stages=1`, timm feature index 1 = layer1), BN in
# eval mode (`norm_eval=True`); mmdet's RGB ImageNet normalisation is the
# one timm's resnet50 is trained with.
#
# This is mmdet's standard R50 1x setting (frozen BN, 8 GPUs x 2 images, lr
# 0.02), not the one VanillaKD reports its detection transfer with (SyncBN,
# norm_eval=False, 8 x 4, lr 0.04; 41.8 box AP published):
# mask-rcnn_timm-resnet50_fpn_syncbn_8xb4-1x_coco.py is that setting.
#
# checkpoint: the student-only export (`student_final.pth`, written by
# `mmkd.StudentCheckpointHook`) of an mmkd classification-distillation run.
# The default is the file `tools/train.py
# configs/distill/cls/kd_beitv2-b-to-resnet50_a1_in1k.py` writes (the
# VanillaKD recipe BEiTv2-B -> ResNet-50, A1; 83.08 top-1 published, not
# reproduced here). It holds the timm classifier's weights
# (plain timm keys, or `model.`-prefixed ones of mmkd.TimmClassifier); the
# classification head is dropped and every other key must be present. It
# is a local file here (an http(s) URL is downloaded once into torch
# hub's cache); point at yours with
#   --cfg-options model.backbone.checkpoint=PATH
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmkd.TimmBackbone',
        model_name='resnet50',
        out_indices=(1, 2, 3, 4),
        checkpoint='work_dirs/kd_beitv2-b-to-resnet50_a1_in1k/'
        'student_final.pth',
        frozen_stages=1,
        norm_eval=True),
    # timm resnet50's feature_info channels at out_indices (1, 2, 3, 4)
    neck=dict(in_channels=[256, 512, 1024, 2048]))
