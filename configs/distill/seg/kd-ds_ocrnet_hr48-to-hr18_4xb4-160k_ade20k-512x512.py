# KD + deep supervision: OCRNet HRNetV2-W48 (teacher) -> OCRNet HRNetV2-W18
# (student), ADE20K, 160k. The KD config plus light auxiliary FCN heads (one
# 3x3 conv of 64 channels) on the student's HRNet branches 1 and 2 (36 and 72
# channels, strides 8 and 16), each trained by pixel KD from the teacher's
# final logits; dropped after training (the student checkpoint has none).
#
# teacher_ckpt: as the KD config,
# ocrnet_hr48_512x512_160k_ade20k_20200615_184705-a073726d.pth
# (mmseg model zoo, mIoU 43.25), by URL.
_base_ = './kd_ocrnet_hr48-to-hr18_4xb4-160k_ade20k-512x512.py'

model = dict(deep_supervision=dict(stages=[1, 2], mode='light'))
