# The generated ImageNet-layout demo set (tools/make_demo_data.py): 6 shape
# classes in similar pairs, 64 px images, <split>/<class>/*.JPEG with
# meta/{train,val}.txt (labels index the sorted class names).

data_root = 'data/demo/imagenet/'
metainfo = dict(
    classes=('circle', 'ellipse', 'hexagon', 'pentagon', 'rectangle',
             'square'))
input_size = 56

# Light augmentation: the classes of a pair share a hue band and differ by
# shape (circle/ellipse, square/rectangle by aspect ratio), so crops keep
# most of the image and barely stretch it.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='mmkd.TimmTrainTransform',
        input_size=input_size,
        scale=(0.35, 1.0),
        ratio=(0.9, 1.0 / 0.9),
        hflip=0.5,
        auto_augment='rand-m5-n1-mstd0.5',
        interpolation='bicubic',
        color_jitter=None),
    dict(type='mmkd.PackClsInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='mmkd.TimmEvalTransform',
        input_size=input_size,
        crop_pct=0.875,
        interpolation='bicubic'),
    dict(type='mmkd.PackClsInputs')
]
train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,  # keeps augmentation RNG streams across epochs
    drop_last=True,  # mixup/cutmix need even batches
    # an iteration-based run never ends an epoch, where mmengine's iterator
    # pauses 2 s (18 iterations per epoch here)
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='mmkd.ImageNetFolder',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='meta/train.txt',
        data_prefix=dict(img_path='train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='mmkd.ImageNetFolder',
        data_root=data_root,
        metainfo=metainfo,
        ann_file='meta/val.txt',
        data_prefix=dict(img_path='val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='mmkd.Accuracy', topk=(1, 5))
test_evaluator = val_evaluator
