"""The teacher-output cache of dense detection KD (teacher_cache=...):
stale keys, refused pipelines, resume over corrupt entries, and the
sparsification's effect on the KD loss and gradient bounded against the live
teacher."""
import glob
import os
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope

import mmkd  # noqa: F401
from helpers.det_models import tiny_detector
from mmkd.losses import SigmoidKDLoss
from mmkd.models import DetectionDistiller
from mmkd.models.distillers.detection import dense
from mmkd.models.distillers.detection.teacher_cache import (
    FP16_REL, TeacherCacheHook, find_pipelines, parse, pipeline_problems,
    sigmoid_kd_error_bound)

#: the COCO 1x / 2x training pipeline's shape: fixed scale + flip
PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
LD = dict(type='mmkd.KDLoss', temperature=10.0, loss_weight=0.25,
          class_reduction='mean')


def _batch(names=('a', 'b'), size=64, seed=0, flip=False, shape=None):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(names), 3, size, size, generator=g)
    samples = []
    for name in names:
        h, w = shape or (size, size)
        s = DetDataSample(metainfo=dict(
            img_path=f'/data/{name}.jpg', img_id=name, ori_shape=(h, w),
            img_shape=(h, w), pad_shape=(size, size),
            batch_input_shape=(size, size), scale_factor=(1.0, 1.0),
            flip=flip, flip_direction='horizontal' if flip else None))
        s.gt_instances = InstanceData(
            bboxes=torch.tensor([[4.0, 6.0, 40.0, 44.0], [20, 16, 62, 62]]),
            labels=torch.tensor([1, 4]))
        samples.append(s)
    return x, samples


def _distiller(tmp_path, kind='retinanet', seed=0, temperature=1.0,
               **cache):
    """A tiny distiller with a cache in ``tmp_path``; the same ``seed``
    gives the same teacher weights (what a rebuilt run loads)."""
    init_default_scope('mmdet')
    distill = dict(cls=dict(type='mmkd.SigmoidKDLoss',
                            temperature=temperature))
    if kind == 'gfl':
        distill['box'] = LD
    cache = dict(dict(dir=str(tmp_path / 'cache'), pipeline=PIPELINE),
                 **cache)
    torch.manual_seed(seed)
    d = DetectionDistiller(
        student=tiny_detector(kind, width=8),
        teacher=tiny_detector(kind, width=16), distill=distill,
        teacher_precision='fp32', teacher_cache=cache)
    _trained_like(d.teacher, seed)
    # TOOD's head reads the epoch from mmengine's message hub, as in a run
    MessageHub.get_current_instance().update_info('epoch', 0)
    d.train()
    return d


@torch.no_grad()
def _trained_like(teacher, seed):
    """Class logits spread around the prior (p = 0.01) with std ~1.5, as
    a trained dense head's: some entries far below the floor, some above
    0.05."""
    head = teacher.bbox_head
    from mmkd.models.distillers.detection.families import (cls_channels,
                                                           levels_of)
    channels = levels_of(head)[2] * cls_channels(head)
    conv = [m for m in head.modules() if isinstance(m, torch.nn.Conv2d)
            and m.out_channels == channels][-1]  # the class logits' conv
    g = torch.Generator().manual_seed(seed)
    conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
    conv.bias.fill_(-4.6)
    x = torch.randn(2, 3, 64, 64, generator=g)
    z = torch.cat([c.flatten() for c in
                   head(teacher.extract_feat(x))[0]])
    conv.weight.mul_(1.5 / z.std())


def _losses(d, x, samples, live=False):
    cache = d.teacher_cache
    if live:
        d.teacher_cache = None
    try:
        out = d.loss(x, samples)
    finally:
        d.teacher_cache = cache
    cache.flush()
    return {k: v.detach() for k, v in out.items() if 'loss_kd' in k}


def _entries(d):
    return sorted(glob.glob(osp.join(d.teacher_cache.dir, '*', '*',
                                     '*.tce')))


# ---------------------------------------------------------------- keys
def test_hits_after_fill_and_stale_teacher_or_pipeline_misses(tmp_path):
    x, samples = _batch()
    d = _distiller(tmp_path)
    _losses(d, x, samples)
    assert d.teacher_cache.stats['misses'] == 2
    assert len(_entries(d)) == 2
    _losses(d, x, samples)
    assert d.teacher_cache.stats['hits'] == 2

    # a rebuilt run with the same teacher and pipeline reads the entries
    same = _distiller(tmp_path)
    _losses(same, x, samples)
    assert same.teacher_cache.stats['hits'] == 2
    # changed teacher weights: another namespace, never the old entries
    other = _distiller(tmp_path, seed=1)
    _losses(other, x, samples)
    assert other.teacher_cache.stats == dict(other.teacher_cache.stats,
                                             hits=0, misses=2)
    # changed pipeline (another scale): another namespace
    pipe = [dict(t, scale=(96, 96)) if t['type'] == 'Resize' else t
            for t in PIPELINE]
    changed = _distiller(tmp_path, pipeline=pipe)
    _losses(changed, x, samples)
    assert changed.teacher_cache.stats['hits'] == 0
    namespaces = glob.glob(osp.join(str(tmp_path / 'cache'), '*',
                                    'namespace.json'))
    assert len(namespaces) == 3

    # the same image flipped, or padded to another batch shape, is another
    # entry
    x2, flipped = _batch(flip=True)
    _losses(d, x2, flipped)
    assert d.teacher_cache.stats['misses'] == 4
    big, padded = _batch(size=96, shape=(64, 64))
    _losses(d, big, padded)
    assert d.teacher_cache.stats['misses'] == 6


def test_a_batch_of_hits_and_misses_runs_the_teacher_on_the_misses(
        tmp_path, monkeypatch):
    d = _distiller(tmp_path)
    x, samples = _batch(('a', 'b'))
    _losses(d, x, samples)
    x2, mixed = _batch(('a', 'c'))
    x2[0] = x[0]  # image a again, next to a new one
    seen = []
    live = dense.live_teacher
    monkeypatch.setattr(dense, 'live_teacher',
                        lambda d, x, s: seen.append(len(s)) or live(d, x, s))
    cached = _losses(d, x2, mixed)
    assert seen == [1] and d.teacher_cache.stats['hits'] == 1
    monkeypatch.setattr(dense, 'live_teacher', live)
    reference = _losses(d, x2, mixed, live=True)
    _assert_within_bound(d, x2, mixed, cached, reference)


# ---------------------------------------------------------------- refusal
@pytest.mark.parametrize('transform, name', [
    (dict(type='RandomResize', scale=(64, 64), ratio_range=(0.5, 2.0)),
     'RandomResize'),
    (dict(type='RandomChoiceResize', scales=[(64, 64), (96, 96)]),
     'RandomChoiceResize'),
    (dict(type='RandomCrop', crop_size=(32, 32)), 'RandomCrop'),
    (dict(type='PhotoMetricDistortion'), 'PhotoMetricDistortion'),
    (dict(type='mmdet.YOLOXHSVRandomAug'), 'YOLOXHSVRandomAug'),
    (dict(type='RandomChoice', transforms=[[dict(type='Resize',
                                                 scale=(64, 64))]]),
     'RandomChoice'),
    (dict(type='MyAugment'), 'MyAugment'),
])
def test_random_transforms_are_refused_by_name(tmp_path, transform, name):
    pipe = PIPELINE[:3] + [transform] + PIPELINE[3:]
    with pytest.raises(ValueError, match=f'{name} .*fallback=.live.'):
        _distiller(tmp_path, pipeline=pipe)


def test_wrapped_pipelines_and_trusted_transforms():
    dataset = dict(type='MultiImageMixDataset', pipeline=[
        dict(type='Mosaic', img_scale=(64, 64)),
        dict(type='MixUp', img_scale=(64, 64))
    ], dataset=dict(type='CocoDataset', pipeline=PIPELINE))
    problems = pipeline_problems(find_pipelines(dataset))
    assert [p.split()[0] for p in problems] == ['Mosaic', 'MixUp']
    assert pipeline_problems([[dict(type='MyLoad')]], trusted=['MyLoad']) \
        == []


def test_fallback_live_runs_the_teacher_and_says_so_once(tmp_path):
    from mmengine.logging import MMLogger
    pipe = PIPELINE + [dict(type='PhotoMetricDistortion')]
    logger = MMLogger.get_current_instance()
    records = []
    handler = type('H', (__import__('logging').Handler, ),
                   dict(emit=lambda self, r: records.append(r.getMessage())))()
    logger.addHandler(handler)
    try:
        d = _distiller(tmp_path, pipeline=pipe, fallback='live')
        x, samples = _batch()
        cached = _losses(d, x, samples)
        _losses(d, x, samples)
    finally:
        logger.removeHandler(handler)
    said = [r for r in records if 'PhotoMetricDistortion' in r]
    assert len(said) == 1 and 'runs live' in said[0]
    assert d.teacher_cache.stats['live_batches'] == 2
    assert _entries(d) == []
    reference = _losses(d, x, samples, live=True)
    for k in reference:
        torch.testing.assert_close(cached[k], reference[k])


def test_unkeyable_batches_and_missing_pipeline(tmp_path):
    d = _distiller(tmp_path)
    x, samples = _batch()
    for s in samples:
        del s.img_path, s.img_id
    with pytest.raises(ValueError, match='lacks img_path / img_id'):
        d.loss(x, samples)
    d.teacher_cache.enabled = None  # as if no pipeline had been handed over
    with pytest.raises(RuntimeError, match='mmkd.TeacherCacheHook'):
        d.loss(*_batch())


def test_random_batch_augments_are_refused(tmp_path):
    init_default_scope('mmdet')
    student = tiny_detector('retinanet', width=8)
    student.data_preprocessor['batch_augments'] = [dict(
        type='BatchSyncRandomResize', random_size_range=(32, 64),
        size_divisor=32)]
    with pytest.raises(ValueError, match='BatchSyncRandomResize'):
        DetectionDistiller(student=student,
                           teacher=tiny_detector('retinanet', width=16),
                           teacher_cache=dict(dir=str(tmp_path),
                                              pipeline=PIPELINE))


def test_hook_hands_over_the_runner_pipeline(tmp_path):
    d = _distiller(tmp_path)
    d.teacher_cache.enabled = None
    cfg = Config(dict(train_dataloader=dict(dataset=dict(
        type='RepeatDataset', times=2,
        dataset=dict(type='CocoDataset', pipeline=PIPELINE)))))
    runner = SimpleNamespace(model=d, cfg=cfg)
    TeacherCacheHook().before_train(runner)
    assert d.teacher_cache.enabled
    _losses(d, *_batch())
    TeacherCacheHook().after_train(runner)
    assert len(_entries(d)) == 2
    cfg.train_dataloader.dataset.dataset.pipeline = PIPELINE + [
        dict(type='RandomAffine')]
    with pytest.raises(ValueError, match='RandomAffine'):
        TeacherCacheHook().before_train(runner)


# ---------------------------------------------------------------- resume
def test_resume_ignores_and_rewrites_partial_or_corrupt_entries(tmp_path):
    d = _distiller(tmp_path, kind='gfl')
    x, samples = _batch(('a', 'b', 'c'))
    reference = _losses(d, x, samples)
    paths = _entries(d)
    assert len(paths) == 3
    data = open(paths[0], 'rb').read()
    key = osp.basename(paths[0])[:-4]
    assert parse(data, key) is not None
    # every truncation, a flipped byte, another key: never a valid entry
    for cut in range(0, len(data), max(1, len(data) // 40)):
        assert parse(data[:cut], key) is None
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    assert parse(bytes(flipped), key) is None
    assert parse(data, 'f' * 40) is None
    # a crash mid-write: a truncated entry, a corrupt one and a temporary
    # file left behind
    with open(paths[0], 'wb') as f:
        f.write(data[:len(data) // 2])
    with open(paths[1], 'r+b') as f:
        f.seek(len(data) // 3)
        f.write(b'\0' * 16)
    with open(paths[2] + '.tmp-1-1', 'wb') as f:
        f.write(data[:10])
    resumed = _distiller(tmp_path, kind='gfl')
    again = _losses(resumed, x, samples)
    stats = resumed.teacher_cache.stats
    assert (stats['corrupt'], stats['misses'], stats['hits']) == (2, 2, 1)
    _assert_within_bound(resumed, x, samples, again, reference)
    # the two were written again: now every image is a hit
    before = dict(stats)
    _losses(resumed, x, samples)
    assert stats['hits'] - before['hits'] == 3
    assert stats['misses'] == before['misses'] == 2
    assert all(parse(open(p, 'rb').read(), osp.basename(p)[:-4])
               for p in paths)


# ---------------------------------------------------------------- bounds
def _cached_and_live(d, x, samples):
    """The score maps from the cache (with each image's floor) and from the
    live teacher, and the student's head outputs."""
    cache = d.teacher_cache
    head = d.student.bbox_head
    s_outs = head(d.student.extract_feat(x))
    sizes = [c.shape[-2:] for c in s_outs[0]]
    pos = dense.positives(head, s_outs[0], samples) \
        if 'box' in d.kd_losses else None
    live = dense.live_teacher(d, x, samples)
    ticket = cache.fetch(d, samples)
    t_outs, score = cache.teacher_out(d, ticket, x, samples, sizes, pos)
    floors = torch.tensor([f.result().floor for f in ticket.futures])
    return s_outs, (t_outs, score), live, floors, pos


@pytest.mark.parametrize('temperature, floor, max_kb', [
    (1.0, 0.01, None),  # the default floor
    (1.0, 0.02, 4),  # a small cap raises each image's floor
    (2.0, 0.05, None),
])
def test_sparsification_bound_holds_for_loss_and_gradient(
        tmp_path, temperature, floor, max_kb):
    d = _distiller(tmp_path, temperature=temperature, floor=floor,
                   max_kb=max_kb)
    x, samples = _batch()
    _losses(d, x, samples)  # fill
    s_outs, (_, cached), live, floors, _ = _cached_and_live(d, x, samples)
    assert d.teacher_cache.stats['hits'] == 2
    if max_kb is not None:
        assert (floors > torch.logit(torch.tensor(floor)) + 1e-3).all()
    channels = d.student.bbox_head.cls_out_channels
    loss_fn = SigmoidKDLoss(temperature=temperature)
    floored_any = False
    for lvl, z_live in enumerate(live[0]):
        s = s_outs[0][lvl].detach().requires_grad_()
        s2 = s.detach().clone().requires_grad_()
        l_live = loss_fn(s, z_live, channels=channels)
        l_cached = loss_fn(s2, cached[lvl], channels=channels)
        l_live.backward()
        l_cached.backward()
        bound, grad_bound = sigmoid_kd_error_bound(
            s, cached[lvl], floors, temperature, channels)
        diff = (l_cached - l_live).abs().item()
        assert diff <= bound.item() * (1 + 1e-5) + 1e-7, (lvl, diff, bound)
        gdiff = (s2.grad - s.grad).abs()
        assert (gdiff <= grad_bound * (1 + 1e-5) + 1e-9).all(), lvl
        # the floored entries are what moved: below the floor, live
        floored = cached[lvl] <= floors.view(-1, 1, 1, 1)
        floored_any |= bool(floored.any())
        assert (z_live[floored] <= cached[lvl][floored] + 1e-6).all()
        kept = ~floored
        torch.testing.assert_close(cached[lvl][kept], z_live[kept],
                                   rtol=FP16_REL, atol=1e-6)
    assert floored_any


def _ld_first_order_bound(d, s_box, t_cached, pos, s_score):
    """2 x the first-order change of the LD term (:func:`dense.box_kd`,
    rewritten without its detach) under the fp16 rounding of the cached box
    logits, |dt| <= FP16_REL |t|."""
    import torch.nn.functional as F
    head, loss_fn = d.student.bbox_head, d.kd_losses['box']
    bins, T = head.reg_max + 1, loss_fn.temperature
    if not pos.any():
        return 0.0

    def rows(m):
        return m.detach().permute(0, 2, 3, 1).reshape(pos.numel(), -1)[pos]

    s = rows(s_box).reshape(-1, bins)
    t = rows(t_cached).reshape(-1, bins).clone().requires_grad_()
    w = rows(s_score).sigmoid().max(-1).values.repeat_interleave(4)
    log_ps, log_pt = F.log_softmax(s / T, -1), F.log_softmax(t / T, -1)
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(-1) / bins
    loss = loss_fn.loss_weight * (kl * w).sum() / 4 * T**2
    torch.testing.assert_close(  # the same term as box_kd's
        loss.detach(), dense.box_kd(loss_fn, s_box.detach(), t_cached,
                                    s_score.detach(), pos, head))
    (g, ) = torch.autograd.grad(loss, t)
    return 2 * (g.abs() * t.detach().abs() * FP16_REL).sum().item()


@pytest.mark.parametrize('kind', ['retinanet', 'gfl', 'fcos', 'atss',
                                  'tood'])
def test_cached_kd_equals_live_kd_within_the_bound(tmp_path, kind):
    d = _distiller(tmp_path, kind)
    x, samples = _batch()
    live_losses = _losses(d, x, samples, live=True)
    _losses(d, x, samples)  # fill
    cached_losses = _losses(d, x, samples)
    assert d.teacher_cache.stats['hits'] == 2
    assert any((live_losses[k] - cached_losses[k]).abs() > 1e-6
               for k in live_losses)  # the floor did change something
    _assert_within_bound(d, x, samples, cached_losses, live_losses)


def _assert_within_bound(d, x, samples, cached_losses, live_losses):
    """Each KD term from the cache within its bound of the live one (the
    bound taken with every image from the cache: larger than that of a
    batch where some images ran live)."""
    s_outs, (t_outs, cached), live, floors, pos = _cached_and_live(
        d, x, samples)
    channels = d.student.bbox_head.cls_out_channels
    for lvl in range(5):
        name = f'loss_kd_cls_l{lvl}'
        bound, _ = sigmoid_kd_error_bound(s_outs[0][lvl], cached[lvl],
                                          floors, 1.0, channels)
        diff = (cached_losses[name] - live_losses[name]).abs().item()
        assert diff <= bound.item() * (1 + 1e-4) + 1e-6, (name, diff, bound)
    if 'box' in d.kd_losses:
        assert any(p.any() for p in pos)
        for lvl in range(5):
            name = f'loss_kd_box_l{lvl}'
            bound = _ld_first_order_bound(d, s_outs[1][lvl], t_outs[1][lvl],
                                          pos[lvl], s_outs[0][lvl])
            diff = (cached_losses[name] - live_losses[name]).abs().item()
            assert diff <= bound + 1e-6, (name, diff, bound)
        # the box distributions are stored at the positives only
        live_box = live[1]
        for lvl in range(5):
            rows = pos[lvl]
            flat = t_outs[1][lvl].permute(0, 2, 3, 1).reshape(rows.numel(), -1)
            ref = live_box[lvl].permute(0, 2, 3, 1).reshape(rows.numel(), -1)
            torch.testing.assert_close(flat[rows], ref[rows], rtol=FP16_REL,
                                       atol=1e-6)
            assert not flat[~rows].any()


def test_entry_size_is_reported_once(tmp_path):
    d = _distiller(tmp_path)
    for i in range(5):
        _losses(d, *_batch((f'i{2 * i}', f'i{2 * i + 1}')))
    assert d.teacher_cache.stats['written'] == 10
    d.loss(*_batch(('i0', 'i1')))
    assert d.teacher_cache._size_reported
    sizes = [os.path.getsize(p) for p in _entries(d)]
    assert max(sizes) <= 96 * 1024


def test_two_stage_distillers_are_refused(tmp_path):
    init_default_scope('mmdet')
    with pytest.raises(ValueError, match='dense heads only'):
        DetectionDistiller(
            student=tiny_detector('faster_rcnn', width=8),
            teacher=tiny_detector('faster_rcnn', width=16),
            distill=dict(cls=dict(type='mmkd.KDLoss')),
            teacher_cache=dict(dir=str(tmp_path), pipeline=PIPELINE))
