# KD + deep supervision: kd_resnet34-to-resnet18_a2_in1k.py
# plus auxiliary heads on the student's stages 1, 2, 3 (timm feature
# indices: layer1..layer3; layer4 is the final output), each trained by
# vanilla KD (T = 1) from the teacher's final logits, weight 1 per head,
# no label loss on the heads (docs/method.md; head design of
# OFA-KD, https://arxiv.org/abs/2310.19444):
#   L = BCE(z_s, y) + KD(z_s, z_t) + sum_s KD(h_s, z_t).
# Heads: (4 - s) separable stride-2 blocks at the stage's width
# (mode='light'; mode='full' doubles the channels per block as OFA-KD), pool,
# linear (mmkd.deep_supervision.CNNStageHead).
# The heads live in the distiller: the student file written by
# mmkd.StudentCheckpointHook (student_final.pth) holds none of them.
_base_ = './kd_resnet34-to-resnet18_a2_in1k.py'

model = dict(
    deep_supervision=dict(stages=[1, 2, 3], kd_weight=1.0, gt_weight=0.0,
                          mode='light'))
