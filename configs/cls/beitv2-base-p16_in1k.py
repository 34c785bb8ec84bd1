# BEiT v2 ViT-B/16 (timm `beitv2_base_patch16_224`), the teacher of the
# BEiTv2-B -> ResNet-50 / ViT-S / ConvNeXtV2-T configs in configs/distill/cls.
# Only its inference is used: the distillers build this model and load
# weights into it; `tools/test.py` evaluates it. The schedule is the A2 one
# only because a config needs one; nobody trains the teacher with it.
#
# Weights: timm's release `beitv2_base_patch16_224.in1k_ft_in22k_in1k`
# (BEiT v2 pre-trained on ImageNet-1K, fine-tuned on 22K then 1K; 86.5 top-1
# published), the teacher of the VanillaKD paper, saved as a local file
# (configs/distill/cls/README.md shows how; a URL there would be
# downloaded once into torch hub's cache).
#
# Normalisation: timm's pretrained config of these weights says
# mean/std = IMAGENET_DEFAULT_MEAN/STD, as the students use (BEiT v1's
# weights, by contrast, take 0.5 / 0.5). Should a teacher be given another
# normalisation, the distiller re-normalises the student's batch for it
# (mmkd.ClassificationDistiller.teacher_inputs).
_base_ = [
    '../_base_/datasets/imagenet_timm.py',
    '../_base_/schedules/vanillakd_a2.py', '../_base_/cls_runtime.py'
]

model = dict(
    type='mmkd.TimmClassifier',
    model_name='beitv2_base_patch16_224',
    num_classes=1000,
    loss=dict(type='mmkd.TimmBinaryCrossEntropy', smoothing=0.0),
    data_preprocessor=dict(
        type='mmkd.ClsDataPreprocessor',
        num_classes=1000,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True))

# Evaluation (tools/test.py on this config) with the teacher's own eval
# transform, the one its published top-1 was measured with: crop_pct 0.9,
# bicubic (timm's pretrained_cfg of
# `beitv2_base_patch16_224.in1k_ft_in22k_in1k`); the students' recipe
# evaluates at 0.95 bicubic. The distillers use only `model` from this
# file: the teacher sees the student's training batch.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='mmkd.TimmEvalTransform',
        input_size=224,
        crop_pct=0.9,
        interpolation='bicubic'),
    dict(type='mmkd.PackClsInputs')
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
