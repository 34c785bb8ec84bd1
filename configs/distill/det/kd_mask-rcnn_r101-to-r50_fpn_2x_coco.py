# KD: Mask R-CNN R101 (teacher) -> R50 (student), FPN, 2x schedule, COCO.
# Vanilla KD on the RoI classification logits (softmax over 80 classes +
# background), as the Faster R-CNN config; masks are not distilled.
# Dataset, schedule and runtime are the student's mmdet config
# (mask-rcnn_r50_fpn_2x_coco.py), unchanged.
#
# teacher_ckpt: mmdet's model-zoo weights of mask-rcnn_r101_fpn_2x_coco
# (box AP 40.8, mask AP 36.6), file
# mask_rcnn_r101_fpn_2x_coco_bbox_mAP-0.408__segm_mAP-0.366_20200505_071027-14b391c7.pth,
# downloaded once by URL into torch hub's cache
# (or pass --cfg-options model.teacher_ckpt=PATH for a local file).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_2x_coco.py'
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/mask_rcnn/mask_rcnn_r101_fpn_2x_coco/mask_rcnn_r101_fpn_2x_coco_bbox_mAP-0.408__segm_mAP-0.366_20200505_071027-14b391c7.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmkd.DetectionDistiller',
    student={{_base_.model}},
    teacher='mmdet::mask_rcnn/mask-rcnn_r101_fpn_2x_coco.py',
    teacher_ckpt=teacher_ckpt,
    # as the Faster R-CNN config: T=1, weight 1 (mean over sampled RoIs)
    distill=dict(
        cls=dict(type='mmkd.KDLoss', temperature=1.0, loss_weight=1.0)))
custom_hooks = [
    dict(type='mmkd.StudentCheckpointHook'),
    # logs processes x batch, the lr after --auto-scale-lr and the sampler
    dict(type='mmkd.RunInfoHook')
]
