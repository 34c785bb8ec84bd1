# Runtime of mmkd's classification configs (scope mmkd, mmengine's hooks):
# what mmdet's / mmseg's default_runtime.py give their configs, plus
# - sync_buffers: mmengine's SyncBuffersHook averages every buffer (BN
#   running mean / var) over the processes at the end of each training epoch
#   (and before validation if an epoch did not end), as VanillaKD's and
#   timm's `--dist-bn reduce`; mmengine's DDP does not broadcast buffers, so
#   without it each rank keeps its own statistics and rank 0's are
#   evaluated and saved;
# - run_info: mmkd.RunInfoHook logs at the start of training the effective
#   batch (processes x batch x accumulation), the lr after --auto-scale-lr
#   and what the sampler does.
# They sit in default_hooks (merged by key) so that a config's own
# custom_hooks list does not drop them.
default_scope = 'mmkd'
custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    sync_buffers=dict(type='SyncBuffersHook'),
    run_info=dict(type='mmkd.RunInfoHook'))
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
