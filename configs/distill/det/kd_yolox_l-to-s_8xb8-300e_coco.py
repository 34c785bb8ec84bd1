# KD: YOLOX-l (teacher) -> YOLOX-s (student), 300 epochs, COCO.
# KD on what YOLOX ranks boxes by: the per-class score
# sigmoid(cls) * sigmoid(objectness) of every location, as a binary KL per
# class (class and objectness together; YOLOX trains its class logits on
# positives only, so the logits alone would be the wrong target). Dataset,
# schedule (mosaic / mixup, BatchSyncRandomResize: the teacher sees the same
# resized batch), the mode switch, SyncNormHook and EMA are the student's
# mmdet config.
#
# Published anchor: none for YOLOX KD on mmdet 3 (YOLOX-s 40.5 box AP,
# mmdet's model zoo).
#
# teacher_ckpt: mmdet's model-zoo weights of yolox_l_8xb8-300e_coco
# (box AP 49.4), by URL.
_base_ = 'mmdet::yolox/yolox_s_8xb8-300e_coco.py'
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/yolox/yolox_l_8x8_300e_coco/yolox_l_8x8_300e_coco_20211126_140236-d3bd2b23.pth'  # noqa: E501
model = dict(
    _delete_=True,
    type='mmkd.DetectionDistiller',
    student={{_base_.model}},
    teacher='mmdet::yolox/yolox_l_8xb8-300e_coco.py',
    teacher_ckpt=teacher_ckpt,
    distill=dict(
        cls=dict(type='mmkd.SigmoidKDLoss', temperature=1.0,
                 loss_weight=1.0)))
custom_hooks = [
    # the student's own hooks (mmdet's YOLOX config): the last-15-epochs
    # switch (no mosaic / mixup, L1 box loss: it reaches the student's head
    # and the auxiliary heads follow), BN statistics synced across GPUs, EMA
    dict(type='YOLOXModeSwitchHook', num_last_epochs=15, priority=48),
    dict(type='SyncNormHook', priority=48),
    dict(
        type='EMAHook',
        ema_type='ExpMomentumEMA',
        momentum=0.0001,
        update_buffers=True,
        priority=49),
    dict(type='mmkd.StudentCheckpointHook'),
    # logs processes x batch, the lr after --auto-scale-lr and the sampler
    dict(type='mmkd.RunInfoHook')
]
