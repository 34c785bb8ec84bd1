# KD: OCRNet HRNetV2-W48 (teacher) -> OCRNet HRNetV2-W18 (student), ADE20K,
# 512x512, 160k iterations (4 GPUs x 4 images). Pixel-wise vanilla KD on the
# final decode head's (OCRHead) logits (OCRNet is a CascadeEncoderDecoder: the
# teacher's FCN head feeds its OCR head, as in its own inference); the
# student's first head (the FCN soft-region head, decode_0) is distilled from
# the teacher's final logits too. Dataset, schedule and runtime are the
# student's mmseg config, unchanged.
#
# teacher_ckpt: mmseg's model-zoo weights (mIoU 43.25), file
# ocrnet_hr48_512x512_160k_ade20k_20200615_184705-a073726d.pth,
# downloaded once by URL into torch hub's cache (or pass --cfg-options
# model.teacher_ckpt=PATH for a local file).
_base_ = 'mmseg::ocrnet/ocrnet_hr18_4xb4-160k_ade20k-512x512.py'  # noqa: E501
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmsegmentation/v0.5/ocrnet/ocrnet_hr48_512x512_160k_ade20k/ocrnet_hr48_512x512_160k_ade20k_20200615_184705-a073726d.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmkd.SegmentationDistiller',
    student={{_base_.model}},
    teacher='mmseg::ocrnet/ocrnet_hr48_4xb4-160k_ade20k-512x512.py',  # noqa: E501
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
