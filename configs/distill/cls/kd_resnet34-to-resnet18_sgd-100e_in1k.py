# KD: ResNet-34 (teacher) -> ResNet-18 (student) on the classic ImageNet KD
# benchmark recipe (torchvision-style augmentation, SGD, 100 epochs:
# configs/cls/resnet18_sgd-100e_in1k.py), with mdistiller's loss weights
# (megvii-research/mdistiller configs/imagenet/r34_r18/kd.yaml: CE_WEIGHT
# 0.5, KD_WEIGHT 0.5, TEMPERATURE 1):
#   L = 0.5 * CE(z_s, y) + 0.5 * T^2 * KL(softmax(z_t/T) || softmax(z_s/T)).
# Published: 71.03 top-1 (mdistiller README, ImageNet table, "KD" row);
# configs/distill/cls/README.md lists the anchors with their sources.
#
# teacher_ckpt: torchvision's ResNet-34 (timm `resnet34.tv_in1k`, 73.31),
# the teacher of that benchmark, saved as a local file (README.md in this
# folder shows how), or pass --cfg-options model.teacher_ckpt=PATH.
_base_ = '../../cls/resnet18_sgd-100e_in1k.py'

teacher_ckpt = 'checkpoints/resnet34.tv_in1k.pth'
model = dict(
    _delete_=True,
    type='mmkd.ClassificationDistiller',
    student={{_base_.model}},
    teacher='{{fileDirname}}/../../cls/resnet34_in1k.py',
    teacher_ckpt=teacher_ckpt,
    ori_weight=0.5,
    distill=dict(
        logits=dict(type='mmkd.KDLoss', temperature=1.0, loss_weight=0.5)))
custom_hooks = [dict(type='mmkd.StudentCheckpointHook')]
