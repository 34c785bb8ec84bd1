# KD + deep supervision: SegFormer MiT-B2 -> MiT-B0, ADE20K, 512x512, mmseg's
# 160k SegFormer schedule (see the KD config). The KD config plus auxiliary
# FCN heads on the student's MiT stages 1 and 2 (backbone outputs 0..3 have
# 32, 64, 160, 256 channels at strides 4, 8, 16, 32; stages 1 and 2: 64 and
# 160 channels, strides 8 and 16), each trained by pixel KD from the
# teacher's final logits; dropped after training (the student
# checkpoint has none).
#
# teacher_ckpt: as the KD config,
# segformer_mit-b2_512x512_160k_ade20k_20210726_112103-cbd414ac.pth (mmseg
# model zoo, mIoU 45.58), by URL.
_base_ = './kd_segformer_mit-b2-to-mit-b0_8xb2-160k_ade20k-512x512.py'

# Light auxiliary heads (mode='light', the default): one 3x3 conv of 64
# channels, trained by pixel KD only, at the logits' resolution. mode='full'
# gives them the decode head's width and two convs; gt_weight=1 adds the
# cross-entropy label loss at full resolution (the costly part).
model = dict(deep_supervision=dict(stages=[1, 2], mode='light'))
