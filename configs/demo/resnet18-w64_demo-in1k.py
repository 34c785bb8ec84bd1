# A timm ResNet-18 of full width (channels 64-512, ~11 M params) trained from
# scratch for 600 iterations on the generated ImageNet-layout demo set: the
# demo's classification teacher. A narrower or shorter-trained teacher did
# not lead the student (one seed, 600 val images: ResNet-18-w64 600 it.
# 72.0 top-1; the w8 student 200 it. 67.5). Mixup with timm's semantics,
# BCE as in the VanillaKD recipes, AdamW + cosine (the ImageNet recipes use
# LAMB for batch 2048; see configs/distill/cls).
_base_ = [
    '../_base_/datasets/demo_imagenet.py',
    '../_base_/schedules/demo_adamw_cosine.py', '../_base_/cls_runtime.py'
]

model = dict(
    type='mmkd.TimmClassifier',
    model_name='resnet18',
    num_classes=6,
    model_kwargs=dict(channels=(64, 128, 256, 512), stem_width=64),
    loss=dict(type='mmkd.TimmBinaryCrossEntropy', smoothing=0.0),
    data_preprocessor=dict(
        type='mmkd.ClsDataPreprocessor',
        num_classes=6,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        mixup_alpha=0.1,
        cutmix_alpha=0.0))

max_iters = 600
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
default_hooks = dict(
    logger=dict(interval=25),
    checkpoint=dict(by_epoch=False, interval=max_iters))
log_processor = dict(by_epoch=False)
