# KD + deep supervision: FCOS R101-caffe -> R50-caffe, FPN, GN head, 1x,
# COCO. The KD config plus auxiliary FCOS heads on backbone stages 1 and 2
# (C3, C4: strides 8 and 16), each trained on the labels and by KD from the
# teacher's final predictions; dropped after training.
#
# teacher_ckpt: as the KD config,
# fcos_r101_caffe_fpn_gn-head_1x_coco-0e37b982.pth (mmdet model zoo, box AP
# 39.1), by URL.
_base_ = './kd_fcos_r101-to-r50-caffe_fpn_gn-head_1x_coco.py'

# Light auxiliary branches (mode='light', the default): a 64-channel pyramid
# from the stage and the student's head type with 64 channels and one conv
# per tower. mode='full' gives each branch the head's own width and depth
# (the heavier variant; compare both with
# tools/analysis_tools/benchmark_distill.py).
model = dict(deep_supervision=dict(stages=[1, 2], mode='light'))
