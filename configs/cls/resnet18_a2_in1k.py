# timm ResNet-18 trained alone on ImageNet-1K with the VanillaKD A2 recipe
# (300 epochs, LAMB; configs/_base_/schedules/vanillakd_a2.py): the baseline
# and student of the ResNet-34 -> ResNet-18 configs in configs/distill/cls.
# The model's recipe settings are those of resnet50_a2_in1k.py (stochastic
# depth 0.05, mixup 0.1, cutmix 1.0, no label smoothing, BCE that does not
# smooth).
#
# Trained alone this is the A2 baseline; the published ResNet-18 numbers
# (69.76 and the KD / DKD / DIST anchors) come from the classic 100-epoch
# SGD recipe, not this one (configs/distill/cls/README.md).
_base_ = [
    '../_base_/datasets/imagenet_timm.py',
    '../_base_/schedules/vanillakd_a2.py', '../_base_/cls_runtime.py'
]

model = dict(
    type='mmkd.TimmClassifier',
    model_name='resnet18',
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
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
