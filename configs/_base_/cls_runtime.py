# Runtime of mmkd's classification configs (scope mmkd, mmengine's hooks):
# what mmdet's / mmseg's default_runtime.py give their configs.
default_scope = 'mmkd'
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)
log_processor = dict(window_size=50, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
