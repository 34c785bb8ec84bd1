# KD: ATSS R101 (teacher) -> R50 (student), FPN, 1x, COCO.
# Vanilla KD on the class logits of every FPN level (binary KL, sigmoid
# head). Dataset, schedule and runtime are the student's mmdet config.
#
# Published anchor (CrossKD, CVPR 2024, mmdet 3.0, R101 teacher, 1x):
# ATSS-R50 39.4 -> 41.8 box AP (a different method). Not reproduced here.
#
# teacher_ckpt: mmdet's model-zoo weights of atss_r101_fpn_1x_coco
# (box AP 41.5), by URL.
_base_ = 'mmdet::atss/atss_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/atss/atss_r101_fpn_1x_coco/atss_r101_fpn_1x_20200825-dfcadd6f.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmkd.DetectionDistiller',
    student={{_base_.model}},
    teacher='mmdet::atss/atss_r101_fpn_1x_coco.py',
    teacher_ckpt=teacher_ckpt,
    distill=dict(
        cls=dict(type='mmkd.SigmoidKDLoss', temperature=1.0,
                 loss_weight=1.0)))
custom_hooks = [
    dict(type='mmkd.StudentCheckpointHook'),
    # logs processes x batch, the lr after --auto-scale-lr and the sampler
    dict(type='mmkd.RunInfoHook')
]
