"""The classification data pipeline: timm transforms, the repeated-
augmentation sampler and the ImageNet dataset configs built by mmengine."""
import os.path as osp
import random
from collections import Counter

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from PIL import Image
from timm.data.distributed_sampler import \
    RepeatAugSampler as TimmRepeatAugSampler
from timm.data.transforms_factory import (transforms_imagenet_eval,
                                          transforms_imagenet_train)

from helpers import ROOT
from mmkd.datasets import (RepeatAugSampler, TimmEvalTransform,
                           TimmTrainTransform)
from mmkd.models import ClsDataPreprocessor
from mmkd.registry import DATA_SAMPLERS, TRANSFORMS

DEMO_CFG = osp.join(ROOT, 'configs/_base_/datasets/demo_imagenet.py')
TIMM_CFG = osp.join(ROOT, 'configs/_base_/datasets/imagenet_timm.py')


def _image(h: int = 72, w: int = 96, seed: int = 0) -> np.ndarray:
    """A BGR uint8 image with structure (gradients) and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    img = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) % 256], -1)
    img = img + rng.integers(0, 40, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _seed(s: int) -> None:
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)


# ------------------------------------------------------------ transforms
def test_eval_transform_is_timms_on_rgb_and_keeps_bgr():
    img = _image()
    out = TimmEvalTransform(
        input_size=56, crop_pct=0.875, interpolation='bicubic')(
            dict(img=img.copy()))
    timm_tf = transforms_imagenet_eval(
        56, crop_pct=0.875, interpolation='bicubic', use_prefetcher=True)
    # timm on the RGB image, without its final MaybePILToTensor
    rgb = Image.fromarray(img[..., ::-1].copy())
    for t in timm_tf.transforms[:-1]:
        rgb = t(rgb)
    expected_bgr = np.asarray(rgb)[..., ::-1]
    assert out['img'].dtype == np.uint8
    assert out['img'].shape == (56, 56, 3) and out['img_shape'] == (56, 56)
    np.testing.assert_array_equal(out['img'], expected_bgr)
    # and a channel swap would be caught: the image is not grey
    assert not np.array_equal(out['img'], expected_bgr[..., ::-1])


def test_eval_transform_pure_colour_stays_in_its_channel():
    img = np.zeros((40, 60, 3), np.uint8)
    img[:, :30, 2] = 255  # red (BGR) left half
    img[:, 30:, 0] = 255  # blue right half
    out = TimmEvalTransform(input_size=32, crop_pct=1.0)(dict(img=img))['img']
    assert out[:, :8, 2].min() > 200 and out[:, :8, 0].max() < 30
    assert out[:, -8:, 0].min() > 200 and out[:, -8:, 2].max() < 30


def test_eval_transform_resize_crop_and_determinism():
    img = _image(100, 80)
    tf = TimmEvalTransform(input_size=(48, 40), crop_pct=0.8)
    a = tf(dict(img=img.copy()))
    b = tf(dict(img=img.copy()))
    np.testing.assert_array_equal(a['img'], b['img'])
    assert a['img'].shape == (48, 40, 3) and a['img_shape'] == (48, 40)
    # crop_pct: shorter side to floor(56 / 0.875) = 64, centre 56 crop
    tf = TimmEvalTransform(input_size=56, crop_pct=0.875)
    assert [type(t).__name__ for t in tf.pil_transform.transforms
            ] == ['Resize', 'CenterCrop']
    assert tf.pil_transform.transforms[0].size == 64


def test_train_transform_matches_timm_under_the_same_seed():
    img = _image()
    kwargs = dict(
        scale=(0.3, 1.0),
        ratio=(3 / 4, 4 / 3),
        hflip=0.5,
        auto_augment='rand-m9-n3-mstd0.5',
        interpolation='bicubic',
        color_jitter=None)
    ours = TimmTrainTransform(input_size=48, **kwargs)
    primary, secondary, _ = transforms_imagenet_train(
        48, use_prefetcher=True, separate=True, **kwargs)
    outs = []
    for s in range(4):
        _seed(s)
        out = ours(dict(img=img.copy()))['img']
        _seed(s)
        expected = np.asarray(secondary(primary(
            Image.fromarray(img[..., ::-1].copy()))))[..., ::-1]
        np.testing.assert_array_equal(out, expected)
        assert out.dtype == np.uint8 and out.shape == (48, 48, 3)
        outs.append(out)
    # it is random: different seeds give different crops/augmentations
    assert not all(np.array_equal(outs[0], o) for o in outs[1:])


def test_train_transform_size_and_shape_key():
    tf = TRANSFORMS.build(
        dict(type='mmkd.TimmTrainTransform', input_size=(40, 56)))
    res = tf(dict(img=_image(), img_shape=(72, 96), ori_shape=(72, 96)))
    assert res['img'].shape == (40, 56, 3)
    assert res['img_shape'] == (40, 56) and res['ori_shape'] == (72, 96)
    assert res['img'].flags['C_CONTIGUOUS']


def test_transform_errors():
    with pytest.raises(ValueError, match=r"\['re_prob'\] not supported"):
        TimmTrainTransform(re_prob=0.25)
    with pytest.raises(ValueError, match='crop_pct'):
        TimmEvalTransform(crop_pct=1.5)
    with pytest.raises(ValueError, match='input_size'):
        TimmEvalTransform(input_size=(1, 2, 3))
    with pytest.raises(ValueError, match='interpolation'):
        TimmEvalTransform(interpolation='random')
    grey = np.zeros((10, 10), np.uint8)
    with pytest.raises(ValueError, match=r'uint8 array of shape \(10, 10\) '
                       'for a.jpg'):
        TimmEvalTransform(input_size=8)(dict(img=grey, img_path='a.jpg'))


# ------------------------------------------------------------ sampler
def test_repeat_aug_sampler_deals_repeats_to_different_ranks():
    data = list(range(30))
    per_rank = [
        list(RepeatAugSampler(data, num_repeats=3, num_replicas=3, rank=r,
                              seed=0)) for r in range(3)
    ]
    # timm/DeiT default: each rank yields len(dataset) / world samples
    assert [len(p) for p in per_rank] == [10, 10, 10]
    counts = Counter(i for p in per_rank for i in p)
    assert len(counts) == 10 and set(counts.values()) == {3}
    for i in counts:  # the three copies of an image are on three ranks
        assert all(i in p for p in per_rank)


def test_repeat_aug_sampler_whole_repeated_list():
    data = list(range(30))
    world = 2
    per_rank = [
        list(
            RepeatAugSampler(
                data,
                num_repeats=3,
                num_replicas=world,
                rank=r,
                seed=0,
                selected_round=0,
                selected_ratio=world / 3)) for r in range(world)
    ]
    assert [len(p) for p in per_rank] == [45, 45]
    counts = Counter(i for p in per_rank for i in p)
    assert set(counts) == set(data) and set(counts.values()) == {3}


def test_repeat_aug_sampler_seed_epoch_and_registry():
    """Several processes: timm's order for the epoch seed + epoch."""
    data = list(range(40))
    s = DATA_SAMPLERS.build(
        dict(type='mmkd.RepeatAugSampler', num_repeats=3, shuffle=True),
        default_args=dict(dataset=data, seed=5, num_replicas=2, rank=1))
    assert (s.rank, s.num_replicas, s.seed) == (1, 2, 5)
    first = list(s)
    assert list(s) == first and len(first) == len(s) == 20
    s.set_epoch(2)
    second = list(s)
    assert second != first and s.epoch == 2
    timm_s = TimmRepeatAugSampler(data, num_replicas=2, rank=1)
    timm_s.set_epoch(5 + 2)
    assert second == list(timm_s)
    other = RepeatAugSampler(data, seed=6, num_replicas=2, rank=1)
    assert list(other) != first
    ordered = RepeatAugSampler(data, shuffle=False, num_replicas=2, rank=0)
    assert list(ordered)[:6] == [0, 0, 1, 2, 2, 3]
    assert 'dealt to 2 processes' in s.describe()
    with pytest.raises(ValueError, match='rank 2 is outside a world of '
                       'size 2'):
        RepeatAugSampler(data, num_replicas=2, rank=2)


def test_repeat_aug_sampler_one_process_shuffles_each_image_once():
    """timm refuses repeated augmentation outside distributed training (the
    copies would share a batch and an epoch would see a third of the
    images); in one process the sampler switches repeats off: every index
    once per epoch, in mmengine's DefaultSampler(shuffle=True) order."""
    from mmengine.dataset import DefaultSampler
    data = list(range(40))
    s = DATA_SAMPLERS.build(
        dict(type='mmkd.RepeatAugSampler', num_repeats=3, shuffle=True),
        default_args=dict(dataset=data, seed=5))  # world from get_dist_info
    assert (s.rank, s.num_replicas, s.num_repeats) == (0, 1, 3)
    ref = DefaultSampler(data, shuffle=True, seed=5)
    for epoch in (0, 3):
        s.set_epoch(epoch)
        ref.set_epoch(epoch)
        order = list(s)
        assert sorted(order) == data and len(s) == len(data)
        assert order == list(ref) and order != data
    assert list(RepeatAugSampler(data, shuffle=False, seed=0)) == data
    assert 'one process, repeats off' in s.describe()
    # timm's sampler in one process: 3 copies side by side, 1/3 of the data
    timm_one = list(TimmRepeatAugSampler(data, num_replicas=1, rank=0))
    assert timm_one[:3] == [timm_one[0]] * 3
    assert len(set(timm_one)) < len(data)


# ------------------------------------------------------------ configs
def _dataloader_cfg(cfg_file: str, split: str, root: str, batch: int):
    cfg = Config.fromfile(cfg_file)
    init_default_scope('mmkd')
    loader = cfg[f'{split}_dataloader']
    loader.dataset.data_root = osp.join(root, 'imagenet') + '/'
    loader.batch_size = batch
    loader.num_workers = 0
    loader.persistent_workers = False
    loader.pin_memory = False
    return cfg, loader


def test_demo_config_train_dataloader_and_preprocessor(demo_root):
    cfg, loader_cfg = _dataloader_cfg(DEMO_CFG, 'train', demo_root, 8)
    assert cfg.val_evaluator.type == 'mmkd.Accuracy'
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    assert len(loader.dataset) == 30  # 5 % of 6 x 100
    batch = next(iter(loader))
    assert len(batch['inputs']) == 8
    for img, sample in zip(batch['inputs'], batch['data_samples']):
        assert img.dtype == torch.uint8 and img.shape == (3, 56, 56)
        assert sample.gt_label.dtype == torch.long
        assert 0 <= int(sample.gt_label) < 6
    pre = ClsDataPreprocessor(
        num_classes=len(cfg.metainfo.classes),
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        mixup_alpha=0.8,
        cutmix_alpha=1.0,
        label_smoothing=0.1)
    out = pre(batch, training=True)
    assert out['inputs'].shape == (8, 3, 56, 56)
    assert out['inputs'].dtype == torch.float32
    scores = torch.stack([s.gt_score for s in out['data_samples']])
    torch.testing.assert_close(scores.sum(1), torch.ones(8))


def test_demo_config_val_dataloader_is_deterministic(demo_root):
    _, loader_cfg = _dataloader_cfg(DEMO_CFG, 'val', demo_root, 6)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    a, b = next(iter(loader)), next(iter(loader))
    assert len(a['inputs']) == 6
    for x, y in zip(a['inputs'], b['inputs']):
        assert x.shape == (3, 56, 56) and torch.equal(x, y)
    # unshuffled: the first six entries of the val list, in order
    assert [int(s.gt_label) for s in a['data_samples']] == [
        int(loader.dataset.get_data_info(i)['gt_label']) for i in range(6)]


def test_imagenet_timm_config_builds_with_repeat_aug(demo_root):
    cfg, loader_cfg = _dataloader_cfg(TIMM_CFG, 'train', demo_root, 4)
    full = Config.fromfile(TIMM_CFG)
    assert full.train_dataloader.batch_size == 256
    assert full.train_dataloader.sampler == dict(
        type='mmkd.RepeatAugSampler', num_repeats=3, shuffle=True)
    eval_tf = full.val_dataloader.dataset.pipeline[1]
    assert (eval_tf.crop_pct, eval_tf.input_size) == (0.95, 224)
    assert full.train_dataloader.dataset.pipeline[1].auto_augment == \
        'rand-m7-mstd0.5'
    assert full.val_evaluator == dict(type='mmkd.Accuracy', topk=(1, 5))
    assert 'model' not in full and 'train_cfg' not in full
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    assert isinstance(loader.sampler, RepeatAugSampler)
    assert loader.sampler.num_repeats == 3 and loader.sampler.seed == 0
    batch = next(iter(loader))
    assert [tuple(x.shape) for x in batch['inputs']] == [(3, 224, 224)] * 4
