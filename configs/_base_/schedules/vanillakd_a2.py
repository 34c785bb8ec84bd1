# The VanillaKD "A2" optimisation (https://arxiv.org/abs/2305.15781; the A2
# of timm's "ResNet strikes back", https://arxiv.org/abs/2110.00476): LAMB,
# lr 5e-3 for 2048 images per step, weight decay 0.02 (none on norm / bias /
# position-embedding parameters), 5 linear warm-up epochs then cosine, 300
# epochs. The batch-dependent parts of the recipe (mixup 0.1, cutmix 1.0, no
# label smoothing) are in the model's data preprocessor (configs/cls/*_a2_*).
#
# What VanillaKD's train-kd.py (timm 0.6.5's train.py) does, and how it is
# reproduced with mmengine:
# - optimizer: timm's create_optimizer_v2(opt='lamb', filter_bias_and_bn=True)
#   = timm.optim.Lamb (betas 0.9/0.999, eps 1e-6, max_grad_norm=1.0: LAMB's
#   own clipping of the global gradient norm, kept; mmengine's clip_grad is
#   off, as VanillaKD's --clip-grad is None) with weight decay 0 for every
#   parameter of <= 1 dimension (norms, biases, ConvNeXt-V2's GRN) and for
#   model.no_weight_decay() (ViT: pos_embed, cls_token, dist_token). Here:
#   paramwise_cfg norm / bias / flat (ndim == 1) decay multipliers 0 and the
#   ViT keys as custom_keys. (Without weight decay LAMB also skips its trust
#   ratio, as in timm, because the decay is set per parameter group.)
# - warm-up: timm's CosineLRScheduler starts at warmup_lr_init = --warmup-lr,
#   1e-6 in VanillaKD's commands (timm 1.0.31's own default is 1e-5), and
#   rises linearly to the peak in 5 epochs: LinearLR from 1e-6 / 5e-3.
# - cosine: down to --min-lr, 1e-6 (train-kd.py's default, not overridden;
#   timm 1.0.31's default would be 0): eta_min = 1e-6, absolute, so that
#   --auto-scale-lr leaves it as timm would.
# - two differences: timm steps the lr once per epoch (t_in_epochs=True),
#   here it changes every iteration (convert_to_iter_based=True); and timm's
#   cosine runs over all 300 epochs with the warm-up written over its first
#   5 (warmup_prefix=False), here it runs over the 295 epochs after the
#   warm-up (mmengine's CosineAnnealingLR cannot start mid-phase). After the
#   warm-up the two are at most 1.5 % of the peak lr apart (0.8 % in A1).
#   During the 5 warm-up epochs they agree at each epoch's start, but within
#   an epoch the per-iteration ramp runs ahead of timm's per-epoch staircase
#   by up to one epoch's step, 1/5 = 20 % of the peak lr.
# - no cool-down epochs (--cooldown-epochs 0), no EMA (--model-ema is off).
#
# Batch: lr 5e-3 is for 2048 images per optimizer step (8 GPUs x 256). The
# recipe configs keep 2048 on any GPU count with gradient accumulation
# (mmkd.EffectiveBatchHook in configs/cls/*_a{1,2}_in1k.py: 1 GPU x 256 x 8
# steps, 2 x 256 x 4, 8 x 256 x 1), so the lr is never rescaled and
# --auto-scale-lr is refused where accumulation is on (mmengine would scale
# linearly, while timm scales LAMB / Adam-family lrs by the square root).
max_epochs = 300
warmup_epochs = 5
base_lr = 5e-3
warmup_lr = 1e-6
min_lr = 1e-6

train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='mmkd.Lamb', lr=base_lr, weight_decay=0.02),
    paramwise_cfg=dict(
        norm_decay_mult=0.,
        bias_decay_mult=0.,
        flat_decay_mult=0.,
        custom_keys={
            'pos_embed': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
            'dist_token': dict(decay_mult=0.),
        }),
    clip_grad=None)
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
auto_scale_lr = dict(enable=False, base_batch_size=2048)
# timm seeds every rank with seed + rank (42 in train-kd.py): mixup/cutmix
# (numpy's RNG, in the data preprocessor) then draws its own lambda and box
# on each GPU; with one seed for all ranks every GPU would mix alike.
randomness = dict(seed=42, diff_rank_seed=True)
