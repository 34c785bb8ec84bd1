# CWD: SegFormer MiT-B2 -> MiT-B0, ADE20K, 512x512, mmseg's 160k SegFormer
# schedule (see the KD config). The KD config with channel-wise distillation
# (Shu et al., ICCV 2021) in place of pixel KD, on the decode head's logits.
# tau=1, loss weight 10: the CWD authors' ADE20K setting for PSPNet R101 ->
# R18 (no published setting for this pair; mmrazor's Cityscapes PSPNet
# config uses weight 5). distill_aux_head=False as in the other CWD configs
# (SegFormer has no auxiliary head anyway).
#
# teacher_ckpt: as the KD config,
# segformer_mit-b2_512x512_160k_ade20k_20210726_112103-cbd414ac.pth (mmseg
# model zoo, mIoU 45.58), by URL.
_base_ = './kd_segformer_mit-b2-to-mit-b0_8xb2-160k_ade20k-512x512.py'

model = dict(
    distill=dict(
        logits=dict(
            _delete_=True,
            type='mmkd.ChannelWiseDivergence',
            temperature=1.0,
            loss_weight=10.0)),
    distill_aux_head=False)
