# The classic ImageNet KD benchmark schedule, as mdistiller's
# configs/imagenet/r34_r18/{kd,dkd}.yaml (megvii-research/mdistiller): SGD,
# momentum 0.9, weight decay 1e-4 on every parameter, lr 0.2 for 512 images
# per step, 100 epochs, lr x0.1 at epochs 30, 60 and 90, no warm-up.
#
# SGD's lr scales linearly with the batch (Goyal et al., arXiv 1706.02677),
# which is mmengine's --auto-scale-lr rule: with another total batch pass
# --auto-scale-lr to tools/train.py (base 512).
max_epochs = 100
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.2, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(
        type='MultiStepLR',
        by_epoch=True,
        milestones=[30, 60, 90],
        gamma=0.1,
        begin=0,
        end=max_epochs)
]
auto_scale_lr = dict(enable=False, base_batch_size=512)
randomness = dict(seed=0)
