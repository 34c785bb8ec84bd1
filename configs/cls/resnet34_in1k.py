# timm ResNet-34, the teacher of the ResNet-34 -> ResNet-18 configs in
# configs/distill/cls. Only its inference is used (the distillers load
# weights into it; `tools/test.py` evaluates it). The schedule is the A2 one
# only because a config needs one; nobody trains the teacher with it.
#
# Weights: timm's `resnet34.tv_in1k` (torchvision's ResNet-34, 73.31 top-1,
# the teacher of the published KD / DKD / DIST ResNet-18 numbers), or timm's
# stronger `resnet34.a1_in1k`; either saved as a local file
# (configs/distill/cls/README.md shows how; a URL there would be
# downloaded once into torch hub's cache). Both
# take the ImageNet mean / std the student uses.
_base_ = [
    '../_base_/datasets/imagenet_timm.py',
    '../_base_/schedules/vanillakd_a2.py', '../_base_/cls_runtime.py'
]

model = dict(
    type='mmkd.TimmClassifier',
    model_name='resnet34',
    num_classes=1000,
    loss=dict(type='mmkd.TimmBinaryCrossEntropy', smoothing=0.0),
    data_preprocessor=dict(
        type='mmkd.ClsDataPreprocessor',
        num_classes=1000,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True))

# Evaluation (tools/test.py on this config) with the teacher's own eval
# transform, the one its published top-1 was measured with: crop_pct 0.875,
# bilinear (timm's pretrained_cfg of `resnet34.tv_in1k`: torchvision's
# resize 256 / centre crop 224); the students' recipe evaluates at 0.95
# bicubic. The distillers use only `model` from this file: the teacher
# sees the student's training batch.
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='mmkd.TimmEvalTransform',
        input_size=224,
        crop_pct=0.875,
        interpolation='bilinear'),
    dict(type='mmkd.PackClsInputs')
]
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
