# KD + deep supervision: Cascade R-CNN R101 -> R50. The KD config plus
# auxiliary RoI classifiers on backbone stages 1 and 2 (C3, C4) that score
# the student's first-stage RoIs, trained by KD from the teacher's
# first-stage RoI logits (as for Faster R-CNN); dropped after training.
_base_ = './kd_cascade-rcnn_r101-to-r50_fpn_20e_coco.py'

model = dict(deep_supervision=dict(stages=[1, 2], mode='light'))
