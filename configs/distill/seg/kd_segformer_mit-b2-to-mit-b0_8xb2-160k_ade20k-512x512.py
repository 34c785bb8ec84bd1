# KD: SegFormer MiT-B2 (teacher) -> SegFormer MiT-B0 (student), ADE20K,
# 512x512. Pixel-wise vanilla KD on the decode head's logits (150-class
# softmax per pixel at 1/4 resolution, ignore-index pixels excluded);
# SegFormer has no auxiliary head.
#
# Schedule: the student config's, as mmseg gives it, not 80k: mmseg's
# segformer_mit-b0_8xb2-160k_ade20k-512x512.py, 160k iterations on 8 GPUs x
# 2 images, AdamW with a 1.5k-iteration warm-up (model-zoo mIoU 37.41). Its
# paramwise_cfg (matched on parameter names) still applies inside the
# distiller: 'head' gives lr x10 to student.decode_head and also to the
# deep-supervision heads (ds_heads) of the KD+DS config, 'norm' and
# 'pos_block' no weight decay in the MiT backbone.
#
# Teacher: MiT-B2 rather than B4 (mIoU 48.46): 24.8 M parameters against
# B4's 61.4 M, so a cheaper teacher forward every iteration, and a smaller
# capacity gap to the 3.8 M of B0. B4 is a two-line change (teacher and
# teacher_ckpt).
#
# teacher_ckpt: mmseg's model-zoo weights of
# segformer_mit-b2_8xb2-160k_ade20k-512x512 (mIoU 45.58), file
# segformer_mit-b2_512x512_160k_ade20k_20210726_112103-cbd414ac.pth,
# downloaded once by URL into torch hub's cache
# (or pass --cfg-options model.teacher_ckpt=PATH for a local file).
_base_ = 'mmseg::segformer/segformer_mit-b0_8xb2-160k_ade20k-512x512.py'
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmsegmentation/v0.5/segformer/segformer_mit-b2_512x512_160k_ade20k/segformer_mit-b2_512x512_160k_ade20k_20210726_112103-cbd414ac.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmkd.SegmentationDistiller',
    student={{_base_.model}},
    teacher='mmseg::segformer/segformer_mit-b2_8xb2-160k_ade20k-512x512.py',
    teacher_ckpt=teacher_ckpt,
    # T=1, weight 1: as the ResNet pairs (a mean of per-pixel KL over the
    # labelled pixels, the scale of the cross-entropy beside it).
    distill=dict(
        logits=dict(type='mmkd.PixelKDLoss', temperature=1.0,
                    loss_weight=1.0)))
custom_hooks = [
    dict(type='mmkd.StudentCheckpointHook'),
    # logs processes x batch, the lr after --auto-scale-lr and the sampler
    dict(type='mmkd.RunInfoHook')
]
# --auto-scale-lr (tools/train.py): the schedule's batch is 8 GPUs x 2
# images = 16, mmseg's convention for base_batch_size (e.g. its
# mask2former_r50_8xb2-160k_ade20k-512x512.py: 16; mmseg's PSPNet /
# DeepLabV3+ / SegFormer ADE20K configs set none, so the flag failed here).
auto_scale_lr = dict(enable=False, base_batch_size=16)
