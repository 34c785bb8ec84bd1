# DIST (Huang et al., NeurIPS 2022, https://arxiv.org/abs/2205.10536),
# a baseline of the VanillaKD study: Pearson-correlation losses between
# the softmax outputs, across classes (inter) and across the batch (intra):
#   L = BCE(z_s, y) + tau^2 * (beta * inter + gamma * intra),
# beta = gamma = tau = 1 as in the VanillaKD code (mmkd.DISTLoss).
# Everything else (teacher, weights, student, A2 recipe) is
# kd_resnet34-to-resnet18_a2_in1k.py's.
_base_ = './kd_resnet34-to-resnet18_a2_in1k.py'

model = dict(
    distill=dict(
        logits=dict(
            _delete_=True,
            type='mmkd.DISTLoss',
            beta=1.0,
            gamma=1.0,
            tau=1.0,
            loss_weight=1.0)))
