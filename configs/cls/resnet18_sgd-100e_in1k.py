# timm ResNet-18 trained alone on ImageNet-1K with the classic ImageNet KD
# benchmark recipe (torchvision-style augmentation, SGD lr 0.2 for 8 GPUs x
# 64 = 512 images, 100 epochs, steps at 30 / 60 / 90; configs/_base_/
# datasets/imagenet_torchvision.py, configs/_base_/schedules/
# imagenet_sgd_100e.py): the student of the *_sgd-100e_in1k configs in
# configs/distill/cls, where the published ResNet-34 -> ResNet-18 KD / DKD /
# DIST numbers come from. Cross-entropy on the hard labels (the data
# preprocessor's one-hot gt_score; no mixup, no smoothing).
#
# The published student number of that benchmark, 69.76 top-1, is
# torchvision's released ResNet-18 (its own 90-epoch recipe), not a run of
# this file.
_base_ = [
    '../_base_/datasets/imagenet_torchvision.py',
    '../_base_/schedules/imagenet_sgd_100e.py', '../_base_/cls_runtime.py'
]

model = dict(
    type='mmkd.TimmClassifier',
    model_name='resnet18',
    num_classes=1000,
    loss=dict(type='mmkd.TimmSoftTargetCrossEntropy'),
    data_preprocessor=dict(
        type='mmkd.ClsDataPreprocessor',
        num_classes=1000,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True))
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))
