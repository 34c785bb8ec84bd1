# KD + deep supervision: RetinaNet R101 -> R50, FPN, 2x, COCO. The KD config
# plus auxiliary RetinaNet heads on backbone stages 1 and 2 (C3, C4: strides
# 8 and 16), each trained on the labels and by KD from the teacher's final
# predictions; dropped after training (the student checkpoint has none).
#
# teacher_ckpt: as the KD config,
# retinanet_r101_fpn_2x_coco_20200131-5560aee8.pth (mmdet model zoo, box AP
# 38.9), by URL.
_base_ = './kd_retinanet_r101-to-r50_fpn_2x_coco.py'

# Light auxiliary branches (mode='light', the default): a 64-channel pyramid
# from the stage and the student's head type with 64 channels and one conv
# per tower. mode='full' gives each branch the head's own width and depth
# (the heavier variant; compare both with
# tools/analysis_tools/benchmark_distill.py).
model = dict(deep_supervision=dict(stages=[1, 2], mode='light'))
