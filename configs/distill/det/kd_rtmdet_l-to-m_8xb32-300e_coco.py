# KD: RTMDet-l (teacher) -> RTMDet-m (student), 300 epochs, COCO.
# Vanilla KD on the class logits of every level (binary KL: RTMDet's head
# is a sigmoid classifier trained with QualityFocalLoss). Dataset, schedule,
# EMA and the stage-2 pipeline switch are the student's mmdet config.
#
# Published anchor (MMRazor + MMYOLO, kd_tiny_rtmdet_s_neck_300e_coco family,
# PKD on the neck, 300e; a different method, the reference to beat):
# RTMDet-m 49.3 -> 50.2 box AP from RTMDet-l. Not reproduced here.
#
# teacher_ckpt: mmdet's model-zoo weights of rtmdet_l_8xb32-300e_coco
# (box AP 51.3), by URL, downloaded once into torch hub's cache
# (or --cfg-options model.teacher_ckpt=PATH for a local file).
_base_ = 'mmdet::rtmdet/rtmdet_m_8xb32-300e_coco.py'
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v3.0/rtmdet/rtmdet_l_8xb32-300e_coco/rtmdet_l_8xb32-300e_coco_20220719_112030-5a0be7c4.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmkd.DetectionDistiller',
    student={{_base_.model}},
    teacher='mmdet::rtmdet/rtmdet_l_8xb32-300e_coco.py',
    teacher_ckpt=teacher_ckpt,
    distill=dict(
        cls=dict(type='mmkd.SigmoidKDLoss', temperature=1.0,
                 loss_weight=1.0)))
custom_hooks = [
    # the student's own hooks (mmdet's RTMDet config): EMA of the weights
    # (the exported student holds the EMA weights) and the pipeline switch
    # of the last 20 epochs
    dict(
        type='EMAHook',
        ema_type='ExpMomentumEMA',
        momentum=0.0002,
        update_buffers=True,
        priority=49),
    dict(
        type='PipelineSwitchHook',
        switch_epoch=280,
        switch_pipeline={{_base_.train_pipeline_stage2}}),
    dict(type='mmkd.StudentCheckpointHook'),
    # logs processes x batch, the lr after --auto-scale-lr and the sampler
    dict(type='mmkd.RunInfoHook')
]
