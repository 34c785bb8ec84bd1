# timm ViT-S/16 trained alone on ImageNet-1K with the VanillaKD A2 recipe
# (300 epochs, LAMB; configs/_base_/schedules/vanillakd_a2.py): the baseline
# and student of the BEiTv2-B -> ViT-S configs in configs/distill/cls.
# The model's recipe settings are those of resnet50_a2_in1k.py (stochastic
# depth 0.05, mixup 0.1, cutmix 1.0, no label smoothing, BCE that does not
# smooth).
#
# ImageNet mean / std, as the other students (timm's ViT weights use 0.5 /
# 0.5; trained from scratch the choice is free, and with it the BEiTv2
# teacher gets the normalisation its weights expect without conversion).
# No weight decay on pos_embed / cls_token: the schedule's custom_keys.
_base_ = [
    '../_base_/datasets/imagenet_timm.py',
    '../_base_/schedules/vanillakd_a2.py', '../_base_/cls_runtime.py'
]

model = dict(
    type='mmkd.TimmClassifier',
    model_name='vit_small_patch16_224',
    num_classes=1000,
    drop_path_rate=0.05,
    loss=dict(type='mmkd.TimmBinaryCrossEntropy', smoothing=0.0),
    data_preprocessor=dict(
        type='mmkd.ClsDataPreprocessor',
        num_classes=1000,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        mixup_alpha=0.1,
        cutmix_alpha=1.0,
        label_smoothing=0.0))
# 2048 images per optimizer step on any GPU count: gradient accumulation
# (configs/_base_/schedules/vanillakd_a2.py, "Batch")
default_hooks = dict(
    checkpoint=dict(interval=10, max_keep_ckpts=3),
    effective_batch=dict(type='mmkd.EffectiveBatchHook', batch_size=2048))
