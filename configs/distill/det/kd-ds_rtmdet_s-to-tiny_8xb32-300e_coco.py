# KD + deep supervision: RTMDet-s -> RTMDet-tiny. The KD config plus light
# auxiliary RTMDet heads on the CSPNeXt outputs 0 and 1 (strides 8 and 16),
# each trained on the labels and by KD from the teacher's final predictions;
# dropped after training. (CSPNeXt's out_indices (2, 3, 4) give 3 outputs:
# valid stages are 0..2.)
_base_ = './kd_rtmdet_s-to-tiny_8xb32-300e_coco.py'

model = dict(deep_supervision=dict(stages=[0, 1], mode='light'))
