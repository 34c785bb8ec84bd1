# KD: BEiTv2-B (teacher) -> ConvNeXtV2-T (student), VanillaKD A2 recipe,
# ImageNet-1K. Vanilla KD (Hinton et al., https://arxiv.org/abs/1503.02531)
# as VanillaKD uses it (https://arxiv.org/abs/2305.15781):
#   L = 1 * BCE(z_s, mixed target) + 1 * T^2 * KL(softmax(z_t/T) ||
#       softmax(z_s/T)),  T = 1.
# Dataset, schedule, runtime and mixup are those of the student config
# configs/cls/convnextv2-tiny_a2_in1k.py, unchanged;
# the teacher sees the same mixed batch (in its own normalisation, here
# the student's).
#
# teacher_ckpt: timm's released BEiTv2-B weights
# (`beitv2_base_patch16_224.in1k_ft_in22k_in1k`, 86.5 top-1 published, the
# VanillaKD teacher) saved as a local file under checkpoints/ (README.md in
# this folder shows how; an http(s) URL also works, downloaded once
# into torch hub's cache), or pass
# --cfg-options model.teacher_ckpt=PATH.
_base_ = '../../cls/convnextv2-tiny_a2_in1k.py'

teacher_ckpt = 'checkpoints/beitv2_base_patch16_224.in1k_ft_in22k_in1k.pth'
model = dict(
    _delete_=True,
    type='mmkd.ClassificationDistiller',
    student={{_base_.model}},
    teacher='{{fileDirname}}/../../cls/beitv2-base-p16_in1k.py',
    teacher_ckpt=teacher_ckpt,
    ori_weight=1.0,
    distill=dict(
        logits=dict(type='mmkd.KDLoss', temperature=1.0, loss_weight=1.0)))
custom_hooks = [dict(type='mmkd.StudentCheckpointHook')]
