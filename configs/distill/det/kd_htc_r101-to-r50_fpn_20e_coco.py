# KD: HTC R101 (teacher) -> R50 (student), FPN, 20 epochs, COCO.
# Multi-level RoI KD as for Cascade R-CNN: at every stage k the teacher's
# stage-k box head (with its semantic branch's features, as HTC adds them)
# scores the student's stage-k RoIs; loss_kd_cls_roi_s0..s2, weighted like
# the stages' own losses. Dataset (with the stuff-map annotations HTC's
# semantic head needs), schedule and runtime are the student's mmdet config.
#
# teacher_ckpt: mmdet's model-zoo weights of htc_r101_fpn_20e_coco
# (box AP 44.8, mask AP 39.6), by URL.
_base_ = 'mmdet::htc/htc_r50_fpn_20e_coco.py'
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/htc/htc_r101_fpn_20e_coco/htc_r101_fpn_20e_coco_20200317-9b41b48f.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmkd.DetectionDistiller',
    student={{_base_.model}},
    teacher='mmdet::htc/htc_r101_fpn_20e_coco.py',
    teacher_ckpt=teacher_ckpt,
    distill=dict(
        cls=dict(type='mmkd.KDLoss', temperature=1.0, loss_weight=1.0)))
custom_hooks = [
    dict(type='mmkd.StudentCheckpointHook'),
    # logs processes x batch, the lr after --auto-scale-lr and the sampler
    dict(type='mmkd.RunInfoHook')
]
