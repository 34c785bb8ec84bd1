# DKD: decoupled KD (Zhao et al., CVPR 2022,
# https://arxiv.org/abs/2203.08679), a baseline of the VanillaKD study:
#   L = BCE(z_s, y) + (alpha * TCKD + beta * NCKD),
# alpha 1, beta 2, T 1 as in the VanillaKD code; the ground-truth class is
# the arg-max of the mixed target (mmkd.DKDLoss).
# Everything else (teacher, weights, student, A2 recipe) is
# kd_resnet34-to-resnet18_a2_in1k.py's.
_base_ = './kd_resnet34-to-resnet18_a2_in1k.py'

model = dict(
    distill=dict(
        logits=dict(
            _delete_=True,
            type='mmkd.DKDLoss',
            alpha=1.0,
            beta=2.0,
            temperature=1.0,
            loss_weight=1.0)))
