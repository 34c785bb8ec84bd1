# CWD: OCRNet HRNetV2-W48 (teacher) -> OCRNet HRNetV2-W18 (student), ADE20K,
# 160k. The KD config with channel-wise distillation (Shu et al., ICCV 2021) in
# place of pixel KD, on the final decode head's logits only, with the CWD
# authors' ADE20K setting (tau=1, loss weight 10).
#
# teacher_ckpt: as the KD config,
# ocrnet_hr48_512x512_160k_ade20k_20200615_184705-a073726d.pth
# (mmseg model zoo, mIoU 43.25), by URL.
_base_ = './kd_ocrnet_hr48-to-hr18_4xb4-160k_ade20k-512x512.py'

model = dict(
    distill=dict(
        logits=dict(
            _delete_=True,
            type='mmkd.ChannelWiseDivergence',
            temperature=1.0,
            loss_weight=10.0)),
    distill_aux_head=False)
