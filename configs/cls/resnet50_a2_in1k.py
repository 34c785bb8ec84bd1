# timm ResNet-50 trained alone on ImageNet-1K with the VanillaKD A2 recipe
# (300 epochs, LAMB; configs/_base_/schedules/vanillakd_a2.py): the baseline
# of the BEiTv2-B -> ResNet-50 configs in configs/distill/cls, and their
# student (they inherit this file and wrap its model).
#
# Recipe parts of the model: stochastic depth 0.05, mixup 0.1 + cutmix 1.0
# (timm's switch, probability 0.5 each per batch), no label smoothing,
# binary cross-entropy on the mixed targets. The smoothing of the recipe is
# applied by the data preprocessor (timm's mixup targets); timm's
# BinaryCrossEntropy would otherwise smooth hard labels by 0.1 by default,
# so the loss is set to smoothing=0 (the mixed targets it gets in training
# are never smoothed by it anyway, as in VanillaKD).
_base_ = [
    '../_base_/datasets/imagenet_timm.py',
    '../_base_/schedules/vanillakd_a2.py', '../_base_/cls_runtime.py'
]

model = dict(
    type='mmkd.TimmClassifier',
    model_name='resnet50',
    num_classes=1000,
    drop_path_rate=0.05,
    loss=dict(type='mmkd.TimmBinaryCrossEntropy', smoothing=0.0),
    data_preprocessor=dict(
        type='mmkd.ClsDataPreprocessor',
        num_classes=1000,
        # ImageNet RGB mean / std in 0-255 units (timm's IMAGENET_DEFAULT_*)
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        mixup_alpha=0.1,
        cutmix_alpha=1.0,
        label_smoothing=0.0))
# every 10 epochs: mmkd.StudentCheckpointHook (distillation configs) writes
# a student file at every runner checkpoint and keeps the last
# max_keep_ckpts (3 here) of them
# 2048 images per optimizer step on any GPU count: gradient accumulation
# (configs/_base_/schedules/vanillakd_a2.py, "Batch")
default_hooks = dict(
    checkpoint=dict(interval=10, max_keep_ckpts=3),
    effective_batch=dict(type='mmkd.EffectiveBatchHook', batch_size=2048))
