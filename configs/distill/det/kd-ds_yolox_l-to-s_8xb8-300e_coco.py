# KD + deep supervision: YOLOX-l -> YOLOX-s. The KD config plus light
# auxiliary YOLOX heads on the CSPDarknet outputs 0 and 1 (strides 8 and
# 16), each trained on the labels and by KD from the teacher's final scores;
# dropped after training. (out_indices (2, 3, 4): valid stages 0..2.)
_base_ = './kd_yolox_l-to-s_8xb8-300e_coco.py'

model = dict(deep_supervision=dict(stages=[0, 1], mode='light'))
