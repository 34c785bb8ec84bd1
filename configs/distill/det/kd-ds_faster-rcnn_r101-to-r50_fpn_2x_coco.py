# KD + deep supervision: Faster R-CNN R101 -> R50, FPN, 2x, COCO. The KD
# config plus auxiliary RoI classifiers (the student's RoI head type, no box
# branch) on backbone stages 1 and 2 (C3, C4: strides 8 and 16), fed the
# student's sampled RoIs and trained by KD from the teacher's RoI logits;
# dropped after training.
#
# teacher_ckpt: as the KD config,
# faster_rcnn_r101_fpn_2x_coco_bbox_mAP-0.398_20200504_210455-1d2dac9c.pth
# (mmdet model zoo, box AP 39.8), by URL.
_base_ = './kd_faster-rcnn_r101-to-r50_fpn_2x_coco.py'

# Light auxiliary branches (mode='light', the default): a 64-channel pyramid
# from the stage and the student's head type with 64 channels and one conv
# per tower. mode='full' gives each branch the head's own width and depth
# (the heavier variant; compare both with
# tools/analysis_tools/benchmark_distill.py).
model = dict(deep_supervision=dict(stages=[1, 2], mode='light'))
