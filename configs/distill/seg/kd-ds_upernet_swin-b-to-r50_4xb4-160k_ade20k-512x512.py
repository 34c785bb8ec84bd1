# KD + deep supervision: UPerNet Swin-B (teacher) -> UPerNet R50 (student),
# ADE20K, 160k. The KD config plus light auxiliary FCN heads (one 3x3 conv of
# 64 channels) on the student's stages 1 and 2 (ResNet C3 and C4, 512 and 1024
# channels, strides 8 and 16), each trained by pixel KD from the teacher's
# final logits; dropped after training (the student checkpoint has none).
#
# teacher_ckpt: as the KD config,
# upernet_swin_base_patch4_window12_512x512_160k_ade20k_pretrain_384x384_22K_20210531_125459-429057bf.pth
# (mmseg model zoo, mIoU 50.76), by URL.
_base_ = './kd_upernet_swin-b-to-r50_4xb4-160k_ade20k-512x512.py'

model = dict(deep_supervision=dict(stages=[1, 2], mode='light'))
