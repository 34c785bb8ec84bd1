# PSPNet R18-d8 on ADE20K, 512x512, 80k iterations (4 GPUs x 4 images): the
# student of the PSPNet distillation configs, and its baseline when trained
# alone. mmseg 1.2.2 has no R18 PSPNet for ADE20K (and no model-zoo
# checkpoint for one), so this derives it from mmseg's R50 ADE20K config the
# way mmseg derives pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py from the
# R50 Cityscapes one: same dataset, schedule and runtime, ResNetV1c-18.
_base_ = 'mmseg::pspnet/pspnet_r50-d8_4xb4-80k_ade20k-512x512.py'

model = dict(
    pretrained='open-mmlab://resnet18_v1c',
    backbone=dict(depth=18),
    decode_head=dict(in_channels=512, channels=128),
    auxiliary_head=dict(in_channels=256, channels=64))
# --auto-scale-lr (tools/train.py): the schedule's batch is 4 GPUs x 4
# images = 16, mmseg's convention for base_batch_size (e.g. its
# mask2former_r50_8xb2-160k_ade20k-512x512.py: 16; mmseg's PSPNet /
# DeepLabV3+ / SegFormer ADE20K configs set none, so the flag failed here).
auto_scale_lr = dict(enable=False, base_batch_size=16)
