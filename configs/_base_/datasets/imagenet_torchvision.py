# ImageNet-1K with the torchvision-style augmentation of the classic ImageNet
# KD benchmark (mdistiller's ImageNet loader, the recipe behind the published
# ResNet-34 -> ResNet-18 KD / DKD numbers): 224 px random-resized crop
# (scale 0.08-1, bilinear), horizontal flip, nothing else (no RandAugment,
# mixup, cutmix, label smoothing, repeated augmentation); eval: resize to
# 256 (224 / 0.875, bilinear) and 224 centre crop. Layout as
# imagenet_timm.py. Batch size is per GPU: 8 GPUs x 64 = 512.

data_root = 'data/imagenet/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='mmkd.TimmTrainTransform',
        input_size=224,
        scale=(0.08, 1.0),
        ratio=(3. / 4., 4. / 3.),
        hflip=0.5,
        auto_augment=None,
        interpolation='bilinear',
        color_jitter=None),
    dict(type='mmkd.PackClsInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='mmkd.TimmEvalTransform',
        input_size=224,
        crop_pct=0.875,
        interpolation='bilinear'),
    dict(type='mmkd.PackClsInputs')
]
train_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='mmkd.ImageNetFolder',
        data_root=data_root,
        ann_file='meta/train.txt',
        data_prefix=dict(img_path='train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128,
    num_workers=8,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='mmkd.ImageNetFolder',
        data_root=data_root,
        ann_file='meta/val.txt',
        data_prefix=dict(img_path='val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='mmkd.Accuracy', topk=(1, 5))
test_evaluator = val_evaluator
