# A timm ResNet-18 of an eighth of the width (channels 8-64, ~0.2 M params):
# the demo's classification student, trained alone for 200 iterations (the
# baseline).
_base_ = './resnet18-w64_demo-in1k.py'

model = dict(model_kwargs=dict(channels=(8, 16, 32, 64), stem_width=8))

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
