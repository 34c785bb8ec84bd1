# KD + deep supervision: ATSS R101 -> R50. The KD config plus light
# auxiliary ATSS heads on backbone stages 1 and 2 (C3, C4), each trained on
# the labels and by KD from the teacher's final predictions; dropped after
# training.
_base_ = './kd_atss_r101-to-r50_fpn_1x_coco.py'

model = dict(deep_supervision=dict(stages=[1, 2], mode='light'))
