# The VanillaKD "A1" optimisation: the A2 one (vanillakd_a2.py, where the
# mapping from timm's defaults is explained) with 600 epochs and weight
# decay 0.01. Mixup 0.2, cutmix 1.0 and label smoothing 0.1 are in the
# model's data preprocessor (configs/cls/*_a1_*).
_base_ = './vanillakd_a2.py'

max_epochs = 600
warmup_epochs = 5
base_lr = 5e-3
warmup_lr = 1e-6
min_lr = 1e-6
train_cfg = dict(max_epochs=max_epochs)
optim_wrapper = dict(optimizer=dict(weight_decay=0.01))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=warmup_lr / base_lr,
        end_factor=1.0,
        by_epoch=True,
        begin=0,
        end=warmup_epochs,
        convert_to_iter_based=True),
    dict(
        type='CosineAnnealingLR',
        T_max=max_epochs - warmup_epochs,
        eta_min=min_lr,
        by_epoch=True,
        begin=warmup_epochs,
        end=max_epochs,
        convert_to_iter_based=True)
]
