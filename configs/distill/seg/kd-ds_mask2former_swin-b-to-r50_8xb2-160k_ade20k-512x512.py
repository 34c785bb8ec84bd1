# KD + multi-level deep supervision: Mask2Former Swin-B (teacher) ->
# Mask2Former R50 (student), ADE20K, 160k. The KD config plus pixel KD on
# every intermediate prediction of the student's decoder: mmdet's d0 (before
# the first of its 9 layers) .. d8, each distilled from the teacher's FINAL
# class map (ds0.loss_kd .. ds8.loss_kd, weight 1 each; the final prediction
# keeps decode.loss_kd). These are the levels Mask2Former already trains on
# the labels (decode.d<i>.loss_*); no auxiliary head is added, so the
# student checkpoint is the plain mmseg model either way.
#
# teacher_ckpt: as the KD config,
# mask2former_swin-b-in22k-384x384-pre_8xb2-160k_ade20k-640x640_20221203_235230-7ec0f569.pth
# (mmseg model zoo, mIoU 53.9), by URL.
_base_ = './kd_mask2former_swin-b-to-r50_8xb2-160k_ade20k-512x512.py'

model = dict(deep_supervision=dict(stages=[0, 1, 2, 3, 4, 5, 6, 7, 8]))
