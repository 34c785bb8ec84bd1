# KD: Faster R-CNN R101 (teacher) -> R50 (student), FPN, 2x schedule, COCO.
# Vanilla KD on the RoI classification logits (softmax over 80 classes +
# background): the teacher's RoI head runs on the student's sampled RoIs.
# Dataset, schedule and runtime are the student's mmdet config
# (faster-rcnn_r50_fpn_2x_coco.py), unchanged.
#
# teacher_ckpt: mmdet's model-zoo weights of faster-rcnn_r101_fpn_2x_coco
# (box AP 39.8), file
# faster_rcnn_r101_fpn_2x_coco_bbox_mAP-0.398_20200504_210455-1d2dac9c.pth,
# downloaded once by URL into torch hub's cache
# (or pass --cfg-options model.teacher_ckpt=PATH for a local file).
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py'
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/faster_rcnn_r101_fpn_2x_coco/faster_rcnn_r101_fpn_2x_coco_bbox_mAP-0.398_20200504_210455-1d2dac9c.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmkd.DetectionDistiller',
    student={{_base_.model}},
    teacher='mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py',
    teacher_ckpt=teacher_ckpt,
    # T=1, weight 1: on the sampled RoIs (at least 3/4 background) the
    # teacher's softmax is already soft, and the term is a mean over RoIs,
    # the scale of the RoI cross-entropy it sits beside.
    distill=dict(
        cls=dict(type='mmkd.KDLoss', temperature=1.0, loss_weight=1.0)))
custom_hooks = [
    dict(type='mmkd.StudentCheckpointHook'),
    # logs processes x batch, the lr after --auto-scale-lr and the sampler
    dict(type='mmkd.RunInfoHook')
]
