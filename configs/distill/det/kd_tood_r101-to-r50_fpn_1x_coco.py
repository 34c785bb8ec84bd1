# KD: TOOD R101 (teacher) -> R50 (student), FPN, 1x, COCO.
# TOOD's head outputs class *probabilities* (task-aligned: the geometric
# mean of two sigmoids); KD takes them as logits (log p - log(1 - p)) and
# compares them by binary KL per class. Dataset, schedule and runtime are the
# student's mmdet config (its ATSS-assigner warm-up epochs included: TOOD
# reads the epoch from mmengine's message hub).
#
# mmdet has no single-scale 1x TOOD R101; the teacher is
# tood_r101_fpn_ms-2x_coco (multi-scale 2x; only its weights and
# single-scale inference matter here).
#
# teacher_ckpt: mmdet's model-zoo weights of tood_r101_fpn_ms-2x_coco
# (box AP 46.1), by URL.
_base_ = 'mmdet::tood/tood_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/tood/tood_r101_fpn_mstrain_2x_coco/tood_r101_fpn_mstrain_2x_coco_20211210_144232-a18f53c8.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmkd.DetectionDistiller',
    student={{_base_.model}},
    teacher='mmdet::tood/tood_r101_fpn_ms-2x_coco.py',
    teacher_ckpt=teacher_ckpt,
    distill=dict(
        cls=dict(type='mmkd.SigmoidKDLoss', temperature=1.0,
                 loss_weight=1.0)))
custom_hooks = [
    dict(type='mmkd.StudentCheckpointHook'),
    # logs processes x batch, the lr after --auto-scale-lr and the sampler
    dict(type='mmkd.RunInfoHook')
]
