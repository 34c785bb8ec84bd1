# DKD (Zhao et al., CVPR 2022, https://arxiv.org/abs/2203.08679) on the
# classic ImageNet KD benchmark recipe, with mdistiller's ImageNet settings
# (megvii-research/mdistiller configs/imagenet/r34_r18/dkd.yaml: CE_WEIGHT
# 1.0, ALPHA 1 (the default), BETA 0.5, T 1, WARMUP 1):
#   L = CE(z_s, y) + (alpha * TCKD + beta * NCKD).
# WARMUP 1: mdistiller scales the DKD term by min(epoch / WARMUP, 1) with
# epochs counted from 1, which is 1 from the first epoch on: no loss
# warm-up in effect, so none here.
# Published: 71.70 top-1 (mdistiller README, ImageNet table, "DKD" row).
# Everything else is kd_resnet34-to-resnet18_sgd-100e_in1k.py's.
_base_ = './kd_resnet34-to-resnet18_sgd-100e_in1k.py'

model = dict(
    ori_weight=1.0,
    distill=dict(
        logits=dict(
            _delete_=True,
            type='mmkd.DKDLoss',
            alpha=1.0,
            beta=0.5,
            temperature=1.0,
            loss_weight=1.0)))
