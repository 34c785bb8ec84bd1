# KD + deep supervision: DINO Swin-L -> DINO R50. The KD config plus the same
# KD at the student's intermediate decoder layers 0-4 (of 6), each from the
# teacher's final layer on the same distillation queries: ds0.loss_kd_* ..
# ds4.loss_kd_*. The decoder layers are the levels (their own label losses,
# d0.loss_cls ..., are the student's as in mmdet); nothing is added to the
# model, so there are no auxiliary heads to drop after training.
_base_ = './kd_dino_swin-l-to-r50_8xb2-12e_coco.py'

model = dict(deep_supervision=dict(stages=[0, 1, 2, 3, 4]))
