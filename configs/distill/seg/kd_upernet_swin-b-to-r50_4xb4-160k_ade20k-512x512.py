# KD: UPerNet Swin-B (teacher) -> UPerNet R50 (student), ADE20K, 512x512, 160k
# iterations (4 GPUs x 4 images). Pixel-wise vanilla KD on the decode head's
# (UPerHead) logits (150-class softmax per pixel, ignore-index pixels
# excluded); the student's own FCN auxiliary head is distilled from the
# teacher's final logits too. Dataset, schedule and runtime are the student's
# mmseg config, unchanged. Student alone (mmseg model zoo, published): 42.05
# mIoU.
#
# teacher_ckpt: mmseg's model-zoo weights (mIoU 50.76), file
# upernet_swin_base_patch4_window12_512x512_160k_ade20k_pretrain_384x384_22K_20210531_125459-429057bf.pth,
# downloaded once by URL into torch hub's cache (or pass --cfg-options
# model.teacher_ckpt=PATH for a local file).
_base_ = 'mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py'  # noqa: E501
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmsegmentation/v0.5/swin/upernet_swin_base_patch4_window12_512x512_160k_ade20k_pretrain_384x384_22K/upernet_swin_base_patch4_window12_512x512_160k_ade20k_pretrain_384x384_22K_20210531_125459-429057bf.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmkd.SegmentationDistiller',
    student={{_base_.model}},
    teacher='mmseg::swin/swin-base-patch4-window12-in22k-384x384-pre_upernet_8xb2-160k_ade20k-512x512.py',  # noqa: E501
    teacher_ckpt=teacher_ckpt,
    # T=1, weight 1: as the PSPNet pair (a mean of per-pixel KL over the
    # labelled pixels, the scale of the cross-entropy beside it).
    distill=dict(
        logits=dict(type='mmkd.PixelKDLoss', temperature=1.0,
                    loss_weight=1.0)))
custom_hooks = [
    dict(type='mmkd.StudentCheckpointHook'),
    # logs processes x batch, the lr after --auto-scale-lr and the sampler
    dict(type='mmkd.RunInfoHook')
]
# mmseg's schedule base batch (4 GPUs x 4 images) for --auto-scale-lr
auto_scale_lr = dict(enable=False, base_batch_size=16)
