# CWD: Mask2Former Swin-B (teacher) -> Mask2Former R50 (student), ADE20K,
# 160k. The KD config with channel-wise distillation (Shu et al., ICCV 2021)
# in place of pixel KD, on the final decoder prediction's per-pixel class
# log-probabilities (the same map as the KD config; per class, a softmax over
# the positions), with the CWD authors' ADE20K setting for PSPNet (tau=1,
# loss weight 10): carried over, not tuned for Mask2Former.
#
# teacher_ckpt: as the KD config,
# mask2former_swin-b-in22k-384x384-pre_8xb2-160k_ade20k-640x640_20221203_235230-7ec0f569.pth
# (mmseg model zoo, mIoU 53.9), by URL.
_base_ = './kd_mask2former_swin-b-to-r50_8xb2-160k_ade20k-512x512.py'

model = dict(
    distill=dict(
        logits=dict(
            _delete_=True,
            type='mmkd.ChannelWiseDivergence',
            temperature=1.0,
            loss_weight=10.0)),
    distill_aux_head=False)
