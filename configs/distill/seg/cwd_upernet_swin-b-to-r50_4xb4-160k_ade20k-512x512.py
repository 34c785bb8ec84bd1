# CWD: UPerNet Swin-B (teacher) -> UPerNet R50 (student), ADE20K, 160k. The KD
# config with channel-wise distillation (Shu et al., ICCV 2021) in place of
# pixel KD, on the final decode head's logits only, with the CWD authors'
# ADE20K setting (tau=1, loss weight 10).
#
# teacher_ckpt: as the KD config,
# upernet_swin_base_patch4_window12_512x512_160k_ade20k_pretrain_384x384_22K_20210531_125459-429057bf.pth
# (mmseg model zoo, mIoU 50.76), by URL.
_base_ = './kd_upernet_swin-b-to-r50_4xb4-160k_ade20k-512x512.py'

model = dict(
    distill=dict(
        logits=dict(
            _delete_=True,
            type='mmkd.ChannelWiseDivergence',
            temperature=1.0,
            loss_weight=10.0)),
    distill_aux_head=False)
