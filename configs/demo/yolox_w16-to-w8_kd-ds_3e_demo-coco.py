# KD + deep supervision for YOLOX on the demo COCO set, trained as mmdet's
# YOLOX recipe trains (by epochs): mosaic / random affine / mixup in a
# MultiImageMixDataset, BatchSyncRandomResize (the teacher sees the same
# resized batch), and in the last epoch YOLOXModeSwitchHook's switch (no
# mosaic / mixup, L1 box loss on the student's head and the auxiliary
# heads), SyncNormHook and EMA. Small on purpose: a 2-core check that the
# recipe's hooks work with the distiller (tests/test_tools), not a
# benchmark. The teacher is a YOLOX of twice the width; pass its weights as
# model.teacher_ckpt (trained, e.g., by tools/train.py on the same set).
_base_ = 'mmdet::yolox/yolox_tiny_8xb8-300e_coco.py'
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)

data_root = 'data/demo/coco/'
metainfo = dict(
    classes=('circle', 'ellipse', 'square', 'rectangle', 'pentagon',
             'hexagon'))
img_scale = (160, 160)  # width, height
max_epochs = 3
num_last_epochs = 1


def _yolox(width):
    widen = width / 64
    return dict(
        type='YOLOX',
        data_preprocessor=dict(
            type='DetDataPreprocessor',
            pad_size_divisor=32,
            batch_augments=[
                dict(type='BatchSyncRandomResize',
                     random_size_range=(128, 192), size_divisor=32,
                     interval=1)
            ]),
        backbone=dict(type='CSPDarknet', deepen_factor=0.33,
                      widen_factor=widen, out_indices=(2, 3, 4),
                      use_depthwise=False, spp_kernal_sizes=(5, 9, 13),
                      norm_cfg=dict(type='BN', momentum=0.03, eps=0.001),
                      act_cfg=dict(type='Swish')),
        neck=dict(type='YOLOXPAFPN',
                  in_channels=[int(c * widen) for c in (256, 512, 1024)],
                  out_channels=4 * width, num_csp_blocks=1,
                  use_depthwise=False, upsample_cfg=dict(
                      scale_factor=2, mode='nearest'),
                  norm_cfg=dict(type='BN', momentum=0.03, eps=0.001),
                  act_cfg=dict(type='Swish')),
        bbox_head=dict(type='YOLOXHead', num_classes=6,
                       in_channels=4 * width, feat_channels=4 * width,
                       stacked_convs=1, strides=(8, 16, 32),
                       use_depthwise=False,
                       norm_cfg=dict(type='BN', momentum=0.03, eps=0.001),
                       act_cfg=dict(type='Swish'),
                       loss_cls=dict(type='CrossEntropyLoss',
                                     use_sigmoid=True, reduction='sum',
                                     loss_weight=1.0),
                       loss_bbox=dict(type='IoULoss', mode='square',
                                      eps=1e-16, reduction='sum',
                                      loss_weight=5.0),
                       loss_obj=dict(type='CrossEntropyLoss',
                                     use_sigmoid=True, reduction='sum',
                                     loss_weight=1.0),
                       loss_l1=dict(type='L1Loss', reduction='sum',
                                    loss_weight=1.0)),
        train_cfg=dict(assigner=dict(type='SimOTAAssigner',
                                     center_radius=2.5)),
        test_cfg=dict(score_thr=0.01, nms=dict(type='nms',
                                               iou_threshold=0.65)))


model = dict(
    _delete_=True,
    type='mmkd.DetectionDistiller',
    student=_yolox(8),
    teacher=_yolox(16),
    teacher_ckpt=None,
    distill=dict(cls=dict(type='mmkd.SigmoidKDLoss', temperature=1.0,
                          loss_weight=1.0)),
    deep_supervision=dict(stages=[0, 1], mode='light'))

train_pipeline = [
    dict(type='Mosaic', img_scale=img_scale, pad_val=114.0),
    dict(type='RandomAffine', scaling_ratio_range=(0.5, 1.5),
         border=(-img_scale[0] // 2, -img_scale[1] // 2)),
    dict(type='MixUp', img_scale=img_scale, ratio_range=(0.8, 1.6),
         pad_val=114.0),
    dict(type='YOLOXHSVRandomAug'),
    dict(type='RandomFlip', prob=0.5),
    # Resize and Pad serve the last epoch, after the mode switch
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='Pad', pad_to_square=True,
         pad_val=dict(img=(114.0, 114.0, 114.0))),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='Pad', pad_to_square=True,
         pad_val=dict(img=(114.0, 114.0, 114.0))),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor'))
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        dataset=dict(
            data_root=data_root,
            metainfo=metainfo,
            ann_file='annotations/instances_train2017.json',
            data_prefix=dict(img='train2017/')),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs,
                 dynamic_intervals=None)
param_scheduler = [
    dict(type='mmdet.QuadraticWarmupLR', by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0.0005, begin=1,
         T_max=max_epochs - num_last_epochs,
         end=max_epochs - num_last_epochs, by_epoch=True,
         convert_to_iter_based=True),
    dict(type='ConstantLR', by_epoch=True, factor=1,
         begin=max_epochs - num_last_epochs, end=max_epochs)
]
default_hooks = dict(checkpoint=dict(interval=max_epochs, max_keep_ckpts=1),
                     logger=dict(interval=1))
custom_hooks = [
    dict(type='YOLOXModeSwitchHook', num_last_epochs=num_last_epochs,
         priority=48),
    dict(type='SyncNormHook', priority=48),
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0001,
         update_buffers=True, priority=49),
    dict(type='mmkd.StudentCheckpointHook'),
    dict(type='mmkd.RunInfoHook')
]
auto_scale_lr = dict(base_batch_size=4)
