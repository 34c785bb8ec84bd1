# KD: Mask2Former Swin-B (teacher) -> Mask2Former R50 (student), ADE20K,
# 512x512, 160k iterations (8 GPUs x 2 images). Pixel-wise vanilla KD on the
# class distribution of Mask2Former's semantic inference: per pixel,
# sum over queries of softmax(class)[no "no object"] x sigmoid(mask),
# normalised over the 150 classes (mmkd/models/distillers/seg_query.py), at
# the mask resolution (1/4), ignore-index pixels excluded; no query matching.
# Final decoder prediction only (decode.loss_kd); the kd-ds config adds the
# intermediate ones. The student's own losses (matching, class / mask / dice
# at every decoder layer) come from its own loss(), unchanged. Dataset,
# schedule, optimizer (AdamW, clip_grad 0.01) and runtime are the student's
# mmseg config. Student alone (mmseg model zoo, published): 47.87 mIoU.
#
# Teacher: mmseg's Swin-B (ImageNet-22k pre-trained) Mask2Former, trained on
# 640x640 crops; here it sees the student's 512x512 crops (Swin pads to its
# windows). KD T=1, weight 1 as the other pairs: not tuned for Mask2Former.
#
# teacher_ckpt: mmseg's model-zoo weights (mIoU 53.9), file
# mask2former_swin-b-in22k-384x384-pre_8xb2-160k_ade20k-640x640_20221203_235230-7ec0f569.pth,
# downloaded once by URL into torch hub's cache (or pass --cfg-options
# model.teacher_ckpt=PATH for a local file).
_base_ = 'mmseg::mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py'  # noqa: E501
# mmdet.models as the student config imports it (the head and pixel decoder
# are mmdet's)
custom_imports = dict(imports=['mmdet.models', 'mmkd'],
                      allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmsegmentation/v0.5/mask2former/mask2former_swin-b-in22k-384x384-pre_8xb2-160k_ade20k-640x640/mask2former_swin-b-in22k-384x384-pre_8xb2-160k_ade20k-640x640_20221203_235230-7ec0f569.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmkd.SegmentationDistiller',
    student={{_base_.model}},
    teacher='mmseg::mask2former/mask2former_swin-b-in22k-384x384-pre_8xb2-160k_ade20k-640x640.py',  # noqa: E501
    teacher_ckpt=teacher_ckpt,
    distill=dict(
        logits=dict(type='mmkd.PixelKDLoss', temperature=1.0,
                    loss_weight=1.0)))
custom_hooks = [
    dict(type='mmkd.StudentCheckpointHook'),
    # logs processes x batch, the lr after --auto-scale-lr and the sampler
    dict(type='mmkd.RunInfoHook')
]
