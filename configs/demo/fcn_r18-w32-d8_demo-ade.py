# FCN with a half-width dilated ResNet-18 (mmseg's ResNetV1c), trained from
# scratch on the generated ADE20K-layout demo set: the demo's segmentation
# teacher. The base model uses SyncBN: tools/train.py turns it into BN on a
# machine without CUDA.
_base_ = [
    'mmseg::_base_/models/fcn_r50-d8.py', '../_base_/datasets/demo_ade.py',
    '../_base_/schedules/demo_adamw_cosine.py', 'mmseg::_base_/default_runtime.py'
]
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)

model = dict(
    data_preprocessor=dict(size=(128, 128)),
    pretrained=None,
    backbone=dict(depth=18, base_channels=32, stem_channels=32),
    decode_head=dict(in_channels=256, channels=64, num_classes=7),
    auxiliary_head=dict(in_channels=128, channels=32, num_classes=7))
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=25, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False,
        interval={{_base_.max_iters}}),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
log_processor = dict(by_epoch=False)
