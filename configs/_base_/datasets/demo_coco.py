# The generated COCO-format demo set (tools/make_demo_data.py): 6 shape
# classes in similar pairs, 192-256 px images (resized to 192), read by
# mmdet's CocoDataset.
_base_ = 'mmdet::_base_/datasets/coco_detection.py'

data_root = 'data/demo/coco/'
metainfo = dict(
    classes=('circle', 'ellipse', 'square', 'rectangle', 'pentagon',
             'hexagon'))
img_scale = (192, 192)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
# InfiniteSampler: an iteration-based run never ends an epoch, where
# mmengine's iterator pauses 2 s (a lot for a 400-image set)
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val2017.json')
test_evaluator = val_evaluator
