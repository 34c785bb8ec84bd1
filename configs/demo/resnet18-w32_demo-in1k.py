# A timm ResNet-18 of half width (channels 32-256, ~2.8 M params) trained
# from scratch on the generated ImageNet-layout demo set: the demo's
# classification teacher. Mixup with timm's semantics, BCE as in the
# VanillaKD recipes, AdamW + cosine (the ImageNet recipes use LAMB for batch
# 2048; see configs/distill/cls).
_base_ = [
    '../_base_/datasets/demo_imagenet.py',
    '../_base_/schedules/demo_adamw_cosine.py', '../_base_/cls_runtime.py'
]

model = dict(
    type='mmkd.TimmClassifier',
    model_name='resnet18',
    num_classes=6,
    model_kwargs=dict(channels=(32, 64, 128, 256), stem_width=32),
    loss=dict(type='mmkd.TimmBinaryCrossEntropy', smoothing=0.0),
    data_preprocessor=dict(
        type='mmkd.ClsDataPreprocessor',
        num_classes=6,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        mixup_alpha=0.1,
        cutmix_alpha=0.0))
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(by_epoch=False, interval={{_base_.max_iters}}))
log_processor = dict(by_epoch=False)
