# KD + deep supervision: kd_beitv2-b-to-vit-s_a2_in1k.py
# plus auxiliary heads on the student's blocks 1, 3 and 9 (0-based, of
# 12), each trained by vanilla KD
# (T = 1) from the teacher's final logits, weight 1 per head,
# no label loss on the heads (docs/method.md; head design of
# OFA-KD, https://arxiv.org/abs/2310.19444):
#   L = BCE(z_s, y) + KD(z_s, z_t) + sum_s KD(h_s, z_t).
# Why these blocks: docs/method.md (after OFA-KD) puts a ViT's stages
# 1..4 at blocks 1, 3, 9, 11 (the 2-2-6-2 split of a four-stage model such
# as Swin); block 11 is the final output, already distilled, and the CNN
# configs supervise their stages 1..3: the same stages here.
# Heads: LayerNorm of the mean patch token, linear
# (mmkd.deep_supervision.TokenHead).
# The heads live in the distiller: the student file written by
# mmkd.StudentCheckpointHook (student_final.pth) holds none of them.
_base_ = './kd_beitv2-b-to-vit-s_a2_in1k.py'

model = dict(
    deep_supervision=dict(stages=[1, 3, 9], kd_weight=1.0, gt_weight=0.0,
                          mode='light'))
