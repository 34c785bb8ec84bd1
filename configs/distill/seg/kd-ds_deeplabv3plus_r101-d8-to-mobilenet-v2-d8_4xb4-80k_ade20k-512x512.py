# KD + deep supervision: DeepLabV3+ R101-d8 -> DeepLabV3+ MobileNetV2-d8,
# ADE20K, 512x512, 80k. The KD config plus auxiliary FCN heads on the
# student's backbone outputs 1 and 2. mmseg's MobileNetV2 here returns the
# outputs of its layers (1, 2, 4, 6) (out_indices): backbone outputs 0..3
# with 24, 32, 96 and 320 channels at strides 4, 8, 8, 8 (dilated). Outputs
# 1 and 2 (32 and 96 channels) are the middle two, as stages 1 and 2 are for
# the ResNet students; the decode head reads 3 (and 0 for its low-level
# branch), mmseg's auxiliary head reads 2. Each DS head is trained by pixel
# KD from the teacher's final logits, and dropped after training (the student checkpoint has none).
#
# teacher_ckpt: as the KD config,
# deeplabv3plus_r101-d8_512x512_80k_ade20k_20200615_014139-d5730af7.pth
# (mmseg model zoo, mIoU 44.6), by URL.
_base_ = './kd_deeplabv3plus_r101-d8-to-mobilenet-v2-d8_4xb4-80k_ade20k-512x512.py'  # noqa: E501

# Light auxiliary heads (mode='light', the default): one 3x3 conv of 64
# channels, trained by pixel KD only, at the logits' resolution. mode='full'
# gives them the decode head's width and two convs; gt_weight=1 adds the
# cross-entropy label loss at full resolution (the costly part).
model = dict(deep_supervision=dict(stages=[1, 2], mode='light'))
