# KD: ResNet-34 (teacher) -> ResNet-18 (student), VanillaKD A2 recipe,
# ImageNet-1K. Vanilla KD (Hinton et al., https://arxiv.org/abs/1503.02531)
# as VanillaKD uses it (https://arxiv.org/abs/2305.15781):
#   L = 1 * BCE(z_s, mixed target) + 1 * T^2 * KL(softmax(z_t/T) ||
#       softmax(z_s/T)),  T = 1.
# Dataset, schedule, runtime and mixup are those of the student config
# configs/cls/resnet18_a2_in1k.py, unchanged;
# the teacher sees the same mixed batch (in its own normalisation, here
# the student's).
#
# teacher_ckpt: timm's released ResNet-34 weights (`resnet34.tv_in1k`,
# torchvision's, 73.31 top-1: the teacher of the published KD / DKD / DIST
# numbers, which belong to the *_sgd-100e_in1k.py configs, not to this A2
# one) saved as a local file under checkpoints/ (README.md in this
# folder shows how; an http(s) URL also works, downloaded once into
# torch hub's cache), or pass
# --cfg-options model.teacher_ckpt=PATH.
_base_ = '../../cls/resnet18_a2_in1k.py'

teacher_ckpt = 'checkpoints/resnet34.tv_in1k.pth'
model = dict(
    _delete_=True,
    type='mmkd.ClassificationDistiller',
    student={{_base_.model}},
    teacher='{{fileDirname}}/../../cls/resnet34_in1k.py',
    teacher_ckpt=teacher_ckpt,
    ori_weight=1.0,
    distill=dict(
        logits=dict(type='mmkd.KDLoss', temperature=1.0, loss_weight=1.0)))
custom_hooks = [dict(type='mmkd.StudentCheckpointHook')]
