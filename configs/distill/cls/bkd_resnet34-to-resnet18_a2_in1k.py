# BKD: binary KD, VanillaKD's ablation (https://arxiv.org/abs/2305.15781):
# BCE-with-logits of the student's logits against the teacher's softmax,
# averaged over batch x classes:
#   L = BCE(z_s, y) + BCE(sigmoid(z_s), softmax(z_t))  (mmkd.BKDLoss).
# Everything else (teacher, weights, student, A2 recipe) is
# kd_resnet34-to-resnet18_a2_in1k.py's.
_base_ = './kd_resnet34-to-resnet18_a2_in1k.py'

model = dict(
    distill=dict(
        logits=dict(_delete_=True, type='mmkd.BKDLoss', loss_weight=1.0)))
