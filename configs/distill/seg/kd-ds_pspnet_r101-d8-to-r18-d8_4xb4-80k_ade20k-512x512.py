# KD + deep supervision: PSPNet R101-d8 -> PSPNet R18-d8, ADE20K, 512x512,
# 80k. The KD config plus auxiliary FCN heads on the student's backbone
# stages 1 and 2 (ResNet C3 and C4, 128 and 256 channels, stride 8 with the
# d8 dilation), each trained by pixel KD from the teacher's final
# logits; dropped after training (the student checkpoint
# has none).
#
# teacher_ckpt: as the KD config,
# pspnet_r101-d8_512x512_160k_ade20k_20200615_100650-967c316f.pth (mmseg
# model zoo, mIoU 44.39), by URL.
_base_ = './kd_pspnet_r101-d8-to-r18-d8_4xb4-80k_ade20k-512x512.py'

# Light auxiliary heads (mode='light', the default): one 3x3 conv of 64
# channels, trained by pixel KD only, at the logits' resolution. mode='full'
# gives them the decode head's width and two convs; gt_weight=1 adds the
# cross-entropy label loss at full resolution (the costly part).
model = dict(deep_supervision=dict(stages=[1, 2], mode='light'))
