# KD + deep supervision: GFL R101 -> R50, FPN, 1x, COCO. The KD config plus
# auxiliary GFL heads on backbone stages 1 and 2 (C3, C4: strides 8 and 16),
# each trained on the labels and by KD (class logits and box distributions)
# from the teacher's final predictions; dropped after training.
#
# teacher_ckpt: as the KD config,
# gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth (mmdet model zoo,
# gfl_r101_fpn_ms-2x_coco, box AP 44.7), by URL.
_base_ = './kd_gfl_r101-to-r50_fpn_1x_coco.py'

# Light auxiliary branches (mode='light', the default): a 64-channel pyramid
# from the stage and the student's head type with 64 channels and one conv
# per tower. mode='full' gives each branch the head's own width and depth
# (the heavier variant; compare both with
# tools/analysis_tools/benchmark_distill.py).
model = dict(deep_supervision=dict(stages=[1, 2], mode='light'))
