# CWD: PSPNet R101-d8 -> PSPNet R18-d8, ADE20K, 512x512, 80k. The KD config
# with channel-wise distillation (Shu et al., ICCV 2021) in place of pixel
# KD: each class channel of the decode head's logits is a softmax over the
# positions, matched to the teacher's by KL.
#
# Setting of the CWD authors' ADE20K config for this pair (PSPNet R101 ->
# R18, 512x512, 80k, 4x4 images): tau=1, loss weight 10, on the decode
# head's logits only (so the student's auxiliary head is not distilled
# here). mmrazor's CWD config (Cityscapes) uses tau=1, loss weight 5. Both
# normalise as mmkd.ChannelWiseDivergence does (sum of KL / (N * C)).
#
# teacher_ckpt: as the KD config,
# pspnet_r101-d8_512x512_160k_ade20k_20200615_100650-967c316f.pth (mmseg
# model zoo, mIoU 44.39), by URL.
_base_ = './kd_pspnet_r101-d8-to-r18-d8_4xb4-80k_ade20k-512x512.py'

model = dict(
    distill=dict(
        logits=dict(
            _delete_=True,
            type='mmkd.ChannelWiseDivergence',
            temperature=1.0,
            loss_weight=10.0)),
    distill_aux_head=False)
