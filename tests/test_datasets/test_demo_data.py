"""The generated demo sets load through the real mmdet / mmseg / mmkd code."""
import hashlib
import os
import os.path as osp

import pytest
import torch
from mmengine.registry import init_default_scope

from mmkd.datasets.demo_data import (SEG_CLASSES, SEG_PALETTE, SHAPE_CLASSES,
                                     make_all_demo_data, make_coco_demo)


def _tree_digest(folder: str) -> str:
    h = hashlib.sha1()
    for dirpath, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            path = osp.join(dirpath, name)
            h.update(osp.relpath(path, folder).encode())
            with open(path, 'rb') as f:
                h.update(f.read())
    return h.hexdigest()


def test_generation_is_deterministic(tmp_path):
    a = make_coco_demo(str(tmp_path / 'a'), num_train=3, num_val=2, seed=3)
    b = make_coco_demo(str(tmp_path / 'b'), num_train=3, num_val=2, seed=3)
    c = make_coco_demo(str(tmp_path / 'c'), num_train=3, num_val=2, seed=4)
    assert _tree_digest(a) == _tree_digest(b)
    assert _tree_digest(a) != _tree_digest(c)


def test_generation_is_reused_and_never_half_written(tmp_path):
    root = str(tmp_path)
    make_all_demo_data(root, scale=0.02)
    names = sorted(os.listdir(root))
    assert names == ['ade', 'coco', 'imagenet']  # no temporary folders left
    before = _tree_digest(root)
    make_all_demo_data(root, scale=0.02)  # reused, unchanged
    assert _tree_digest(root) == before


def test_coco_demo_loads_with_mmdet(demo_root):
    init_default_scope('mmdet')
    from mmdet.datasets import CocoDataset
    ds = CocoDataset(
        data_root=osp.join(demo_root, 'coco'),
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        metainfo=dict(classes=SHAPE_CLASSES),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='PackDetInputs')
        ])
    assert len(ds) == 20  # 400 * 0.05
    labels = []
    for i in range(len(ds)):
        item = ds[i]
        img = item['inputs']
        sample = item['data_samples']
        h, w = img.shape[1:]
        assert img.shape[0] == 3 and 192 <= h <= 256 and 192 <= w <= 256
        boxes = sample.gt_instances.bboxes.tensor
        assert 1 <= len(boxes) <= 5
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] >
                                                      boxes[:, 1]).all()
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= w).all() and (
            boxes[:, 3] <= h).all()
        labels += sample.gt_instances.labels.tolist()
    assert set(labels) <= set(range(6)) and len(set(labels)) >= 4


def test_ade_demo_loads_with_mmseg(demo_root):
    init_default_scope('mmseg')
    from mmseg.datasets import BaseSegDataset
    ds = BaseSegDataset(
        data_root=osp.join(demo_root, 'ade'),
        data_prefix=dict(
            img_path='images/training', seg_map_path='annotations/training'),
        img_suffix='.jpg',
        seg_map_suffix='.png',
        reduce_zero_label=True,
        metainfo=dict(classes=SEG_CLASSES, palette=SEG_PALETTE),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', reduce_zero_label=True),
            dict(type='PackSegInputs')
        ])
    assert len(ds) == 15  # 300 * 0.05
    seen = set()
    for i in range(len(ds)):
        item = ds[i]
        assert tuple(item['inputs'].shape) == (3, 128, 128)
        seg = item['data_samples'].gt_sem_seg.data
        assert tuple(seg.shape) == (1, 128, 128)
        seen |= set(torch.unique(seg).tolist())
    # 0 in the file (unlabelled edges) became 255; 1..7 became 0..6
    assert 255 in seen and 0 in seen
    assert seen <= set(range(7)) | {255}
    assert len(seen - {0, 255}) >= 3


def test_imagenet_demo_loads_with_imagenet_folder(demo_root):
    init_default_scope('mmkd')
    from mmkd.registry import DATASETS
    ds = DATASETS.build(
        dict(
            type='ImageNetFolder',
            data_root=osp.join(demo_root, 'imagenet'),
            data_prefix=dict(img_path='val'),
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='PackClsInputs')
            ]))
    assert ds.metainfo['classes'] == tuple(sorted(SHAPE_CLASSES))
    assert len(ds) == 30  # 100 * 0.05 -> 5 per class, 6 classes
    labels = []
    for i in range(len(ds)):
        item = ds[i]
        assert tuple(item['inputs'].shape) == (3, 64, 64)
        assert item['inputs'].dtype == torch.uint8
        label = int(item['data_samples'].gt_label)
        cls_dir = osp.basename(osp.dirname(item['data_samples'].img_path))
        assert ds.metainfo['classes'][label] == cls_dir
        labels.append(label)
    assert sorted(labels) == sorted(list(range(6)) * 5)


def test_imagenet_meta_file_matches_folders(demo_root):
    from mmkd.datasets import ImageNetFolder
    root = osp.join(demo_root, 'imagenet')
    scanned = ImageNetFolder(
        data_root=root, data_prefix=dict(img_path='train'), pipeline=[])
    listed = ImageNetFolder(
        data_root=root,
        data_prefix=dict(img_path='train'),
        ann_file='meta/train.txt',
        pipeline=[])
    key = lambda d: (d['img_path'], d['gt_label'])  # noqa: E731
    assert sorted(map(key, scanned.load_data_list())) == sorted(
        map(key, listed.load_data_list()))


def test_imagenet_folder_errors_name_the_folder(tmp_path):
    from mmkd.datasets import ImageNetFolder
    with pytest.raises(FileNotFoundError, match=str(tmp_path / 'missing')):
        ImageNetFolder(data_root=str(tmp_path),
                       data_prefix=dict(img_path='missing'), pipeline=[])
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='no class sub-folders'):
        ImageNetFolder(data_root=str(tmp_path),
                       data_prefix=dict(img_path='empty'), pipeline=[])


def test_ade_demo_things_in_class_hues_on_grey_stuff(demo_root):
    """Shapes are filled in their class's hue band; backgrounds are greyish."""
    import numpy as np
    from PIL import Image

    from mmkd.datasets.demo_data import CLASS_HUES
    folder = osp.join(demo_root, 'ade')
    hue_err, shape_sat, stuff_sat = [], [], []
    for name in sorted(os.listdir(osp.join(folder, 'images', 'training'))):
        img = Image.open(osp.join(folder, 'images', 'training', name))
        hsv = np.asarray(img.convert('HSV'), float)
        label = np.asarray(
            Image.open(
                osp.join(folder, 'annotations', 'training',
                         name.replace('.jpg', '.png'))))
        stuff_sat.append(np.median(hsv[label == 1][:, 1]))
        for k in range(len(SHAPE_CLASSES)):
            inside = hsv[label == k + 2]
            if len(inside) < 50:
                continue
            shape_sat.append(np.median(inside[:, 1]))
            # visible part of the topmost shape of class k: its median hue
            d = np.median(inside[:, 0]) * 360 / 256 - CLASS_HUES[k]
            hue_err.append(abs((d + 180) % 360 - 180))
    assert len(hue_err) >= 10
    # +-15 degrees of band, plus JPEG and pixel noise, overlaps aside
    assert np.median(hue_err) < 15
    assert np.median(shape_sat) > 2 * np.median(stuff_sat)
