# ImageNet-1K with timm's augmentation as in the VanillaKD recipes: 224 px
# random-resized crop, flip, RandAugment rand-m7-mstd0.5, no colour jitter,
# no random erasing (mixup/cutmix and label smoothing belong to the model's
# mmkd.ClsDataPreprocessor); eval: bicubic resize to 224 / 0.95 = 235 and
# 224 centre crop; repeated augmentation x3.
#
# Layout (mmpretrain's): data/imagenet/{train,val}/ and meta/{train,val}.txt
# with "<path relative to the split folder> <label>" lines. mmkd's
# ImageNetFolder takes the class names from the split folder's
# sub-folders, so val/ must be sorted into class folders (as for timm and
# torchvision); with a flat val/ set val_dataloader.dataset.metainfo to
# dict(classes=<the 1000 names in label order>).
#
# Batch size is per GPU: the recipes assume 8 GPUs x 256 = 2048 and keep
# 2048 per optimizer step on fewer GPUs by gradient accumulation
# (mmkd.EffectiveBatchHook in configs/cls/*_a{1,2}_in1k.py). In one process
# mmkd.RepeatAugSampler switches repetition off (timm refuses it there).

data_root = 'data/imagenet/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='mmkd.TimmTrainTransform',
        input_size=224,
        scale=(0.08, 1.0),
        ratio=(3. / 4., 4. / 3.),
        hflip=0.5,
        auto_augment='rand-m7-mstd0.5',
        interpolation='bicubic',
        color_jitter=None),
    dict(type='mmkd.PackClsInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='mmkd.TimmEvalTransform',
        input_size=224,
        crop_pct=0.95,
        interpolation='bicubic'),
    dict(type='mmkd.PackClsInputs')
]
train_dataloader = dict(
    batch_size=256,
    num_workers=10,
    persistent_workers=True,  # keeps augmentation RNG streams across epochs
    pin_memory=True,
    drop_last=True,  # mixup/cutmix need even batches
    sampler=dict(type='mmkd.RepeatAugSampler', num_repeats=3, shuffle=True),
    dataset=dict(
        type='mmkd.ImageNetFolder',
        data_root=data_root,
        ann_file='meta/train.txt',
        data_prefix=dict(img_path='train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=256,
    num_workers=10,
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
