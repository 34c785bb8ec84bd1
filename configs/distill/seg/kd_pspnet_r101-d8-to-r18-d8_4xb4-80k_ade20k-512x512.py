# KD: PSPNet R101-d8 (teacher) -> PSPNet R18-d8 (student), ADE20K, 512x512,
# 80k iterations (4 GPUs x 4 images). Pixel-wise vanilla KD on the decode
# head's logits (150-class softmax per pixel, ignore-index pixels excluded);
# the student's own FCN auxiliary head is distilled from the teacher's final
# logits too. Dataset, schedule and runtime are the student's
# (pspnet_r18-d8_4xb4-80k_ade20k-512x512.py in this folder: mmseg's R50
# ADE20K config with an R18 backbone), unchanged.
#
# teacher_ckpt: mmseg's model-zoo weights of pspnet_r101-d8_4xb4-160k_ade20k
# (mIoU 44.39, the teacher of the published CWD numbers on ADE20K), file
# pspnet_r101-d8_512x512_160k_ade20k_20200615_100650-967c316f.pth,
# downloaded once by URL into torch hub's cache
# (or pass --cfg-options model.teacher_ckpt=PATH for a local file). The
# 160k and 80k R101 configs build the same model; the 80k weights,
# pspnet_r101-d8_512x512_80k_ade20k_20200614_031423-b6e782f0.pth (43.57),
# load into it as well.
_base_ = './pspnet_r18-d8_4xb4-80k_ade20k-512x512.py'
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmsegmentation/v0.5/pspnet/pspnet_r101-d8_512x512_160k_ade20k/pspnet_r101-d8_512x512_160k_ade20k_20200615_100650-967c316f.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmkd.SegmentationDistiller',
    student={{_base_.model}},
    teacher='mmseg::pspnet/pspnet_r101-d8_4xb4-160k_ade20k-512x512.py',
    teacher_ckpt=teacher_ckpt,
    # T=1, weight 1: the term is a mean of per-pixel KL over the labelled
    # pixels, on the scale of the per-pixel cross-entropy it sits beside.
    distill=dict(
        logits=dict(type='mmkd.PixelKDLoss', temperature=1.0,
                    loss_weight=1.0)))
custom_hooks = [
    dict(type='mmkd.StudentCheckpointHook'),
    # logs processes x batch, the lr after --auto-scale-lr and the sampler
    dict(type='mmkd.RunInfoHook')
]
