# KD: Cascade R-CNN R101 (teacher) -> R50 (student), FPN, 20 epochs, COCO.
# Multi-level RoI KD: at every cascade stage k the teacher's stage-k box
# head scores the student's stage-k RoIs (over the teacher's own features)
# and the student's stage-k class logits learn its softmax (vanilla KD,
# T=1), weighted like the stage's own loss (stage_loss_weights 1, 0.5,
# 0.25): loss_kd_cls_roi_s0..s2. Dataset, schedule and runtime are the
# student's mmdet config.
#
# Published anchor: none cited for logit KD on this pair (VanillaKD's COCO
# transfer table trains Cascade / Mask R-CNN on distilled ImageNet
# backbones, a different setting).
#
# teacher_ckpt: mmdet's model-zoo weights of cascade-rcnn_r101_fpn_20e_coco
# (box AP 42.5), by URL.
_base_ = 'mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_20e_coco.py'
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/cascade_rcnn/cascade_rcnn_r101_fpn_20e_coco/cascade_rcnn_r101_fpn_20e_coco_bbox_mAP-0.425_20200504_231812-5057dcc5.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmkd.DetectionDistiller',
    student={{_base_.model}},
    teacher='mmdet::cascade_rcnn/cascade-rcnn_r101_fpn_20e_coco.py',
    teacher_ckpt=teacher_ckpt,
    distill=dict(
        cls=dict(type='mmkd.KDLoss', temperature=1.0, loss_weight=1.0)))
custom_hooks = [
    dict(type='mmkd.StudentCheckpointHook'),
    # logs processes x batch, the lr after --auto-scale-lr and the sampler
    dict(type='mmkd.RunInfoHook')
]
