# CWD: DeepLabV3+ R101-d8 -> DeepLabV3+ MobileNetV2-d8, ADE20K, 512x512, 80k.
# The KD config with channel-wise distillation (Shu et al., ICCV 2021) in
# place of pixel KD, on the decode head's logits only (the student's
# auxiliary head is not distilled). tau=1, loss weight 10: the CWD authors'
# ADE20K setting for PSPNet R101 -> R18 (no published setting for this
# pair; mmrazor's Cityscapes PSPNet config uses weight 5).
#
# teacher_ckpt: as the KD config,
# deeplabv3plus_r101-d8_512x512_80k_ade20k_20200615_014139-d5730af7.pth
# (mmseg model zoo, mIoU 44.6), by URL.
_base_ = './kd_deeplabv3plus_r101-d8-to-mobilenet-v2-d8_4xb4-80k_ade20k-512x512.py'  # noqa: E501

model = dict(
    distill=dict(
        logits=dict(
            _delete_=True,
            type='mmkd.ChannelWiseDivergence',
            temperature=1.0,
            loss_weight=10.0)),
    distill_aux_head=False)
