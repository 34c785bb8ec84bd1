# FCN with a quarter-width dilated ResNet-18: the demo's segmentation
# student, trained alone for 300 iterations (the baseline).
_base_ = './fcn_r18-w32-d8_demo-ade.py'

model = dict(
    backbone=dict(base_channels=16, stem_channels=16),
    decode_head=dict(in_channels=128, channels=32),
    auxiliary_head=dict(in_channels=64, channels=16))

max_iters = 200
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(
        type='CosineAnnealingLR',
        by_epoch=False,
        begin=50,
        end=max_iters,
        T_max=max_iters - 50,
        eta_min=2e-5)
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
