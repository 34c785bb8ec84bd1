# timm ResNet-50 trained alone on ImageNet-1K with the VanillaKD A1 recipe
# (600 epochs, LAMB, weight decay 0.01; configs/_base_/schedules/
# vanillakd_a1.py): the baseline and student of
# configs/distill/cls/kd_beitv2-b-to-resnet50_a1_in1k.py. As
# resnet50_a2_in1k.py, with A1's stronger mixing: mixup 0.2, cutmix 1.0,
# label smoothing 0.1 (in the data preprocessor's mixed targets; the BCE
# loss itself does not smooth).
_base_ = [
    '../_base_/datasets/imagenet_timm.py',
    '../_base_/schedules/vanillakd_a1.py', '../_base_/cls_runtime.py'
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
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        mixup_alpha=0.2,
        cutmix_alpha=1.0,
        label_smoothing=0.1))
# 2048 images per optimizer step on any GPU count: gradient accumulation
# (configs/_base_/schedules/vanillakd_a2.py, "Batch")
default_hooks = dict(
    checkpoint=dict(interval=10, max_keep_ckpts=3),
    effective_batch=dict(type='mmkd.EffectiveBatchHook', batch_size=2048))
