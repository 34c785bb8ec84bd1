"""Query-based detectors (DINO, two-stage Deformable DETR) on tiny models:
one step with KD at every decoder layer, gradients into every student
decoder layer and none into the teacher, KD terms at their minimum for a
teacher identical to the student, the student's own (matching and
denoising) losses untouched by the distillation queries, the KD terms by
hand, and the build-time refusals."""
import copy
import functools

import pytest
import torch
from mmengine.registry import init_default_scope

import mmkd  # noqa: F401
from mmkd.models import DetectionDistiller
from test_detection_distiller import _batch

_BASES = dict(
    dino='mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py',
    deformable='mmdet::deformable_detr/'
    'deformable-detr-refine-twostage_r50_16xb2-50e_coco.py')
#: KD on the classes, L1 and GIoU of the boxes (the head's own weights)
DISTILL = dict(cls=dict(type='mmkd.SigmoidKDLoss'),
               bbox=dict(type='L1Loss', loss_weight=5.0),
               iou=dict(type='GIoULoss', loss_weight=2.0))
QUERIES = dict(num_proposals=12, num_random=6)


@functools.lru_cache(maxsize=None)
def _base(kind: str):
    from mmengine.hub import get_config
    model = get_config(_BASES[kind]).model
    model.pop('_scope_', None)
    return model


def tiny_detr(kind='dino', width=8, queries=20, dec_layers=3, levels=4,
              ffn=32, num_classes=6):
    """A ResNet-18 DINO / two-stage Deformable DETR of ``width`` base
    channels, one encoder layer, ``dec_layers`` decoder layers, ``levels``
    feature levels; embed dims stay 256 (mmdet's query position encodings
    are 128 features per coordinate); no dropout."""
    m = copy.deepcopy(_base(kind))
    outs = (1, 2, 3) if levels == 4 else (0, 1, 2, 3)
    m.update(num_queries=queries, num_feature_levels=levels)
    m.backbone.update(depth=18, base_channels=width, init_cfg=None,
                      out_indices=outs)
    m.neck.update(in_channels=[width * 2**i for i in outs], num_outs=levels)
    m.encoder.num_layers = 1
    m.decoder.num_layers = dec_layers
    for coder in (m.encoder, m.decoder):
        layer = coder.layer_cfg
        layer.ffn_cfg.update(feedforward_channels=ffn, ffn_drop=0.0)
        for attn in ('self_attn_cfg', 'cross_attn_cfg'):
            if attn in layer:
                layer[attn].update(dropout=0.0)
    m.encoder.layer_cfg.self_attn_cfg.num_levels = levels
    m.decoder.layer_cfg.cross_attn_cfg.num_levels = levels
    m.bbox_head.num_classes = num_classes
    if 'dn_cfg' in m:
        m.dn_cfg.group_cfg.num_dn_queries = 8
    return m


def _build(kind='dino', teacher=None, distill=DISTILL, queries=QUERIES,
           **kwargs):
    """Student: 3 decoder layers over 4 levels; teacher: wider, 2 decoder
    layers over 5 levels, more queries."""
    init_default_scope('mmdet')
    torch.manual_seed(0)
    if teacher is None:
        teacher = tiny_detr(kind, width=16, queries=30, dec_layers=2,
                            levels=5, ffn=64)
    d = DetectionDistiller(
        student=tiny_detr(kind), teacher=teacher, distill=distill,
        distill_queries=queries, teacher_precision='fp32', **kwargs)
    for model in (d.student, d.teacher):
        _init(model)
    return d


def _init(model):
    """``init_weights()`` as the runner would (DETRs allocate
    ``level_embed`` uninitialised), then the box regressions off zero, as
    in a trained model (at mmdet's zero start every box is its reference
    box in both models, and box KD would be 0 whatever the code)."""
    model.init_weights()
    for branch in model.bbox_head.reg_branches:
        torch.nn.init.normal_(branch[-1].weight, std=0.05)


def _terms(losses, prefix=''):
    return {k: v for k, v in losses.items()
            if k.startswith(prefix) and 'loss_kd' in k}


@pytest.mark.parametrize('kind', ['dino', 'deformable'])
def test_one_step_kd_at_every_layer_and_gradients(kind):
    """Final-layer KD and ds terms for the intermediate layers, finite and
    non-zero; the KD terms alone reach every student decoder layer (and the
    encoder and backbone through the memory); nothing reaches the
    teacher. The teacher runs in bf16 where the CPU has it."""
    d = _build(kind, deep_supervision=dict(stages=[0, 1]))
    d.teacher_runner.precision = 'bf16'
    d.train()
    x, samples = _batch()
    losses = d.loss(x, samples)
    own = {'loss_cls', 'loss_bbox', 'loss_iou', 'd0.loss_cls',
           'enc_loss_cls'} | ({'dn_loss_cls'} if kind == 'dino' else set())
    assert own <= set(losses)
    kd = _terms(losses)
    expected = {f'{p}loss_kd_{t}' for p in ('', 'ds0.', 'ds1.')
                for t in ('cls', 'bbox', 'iou')}
    assert set(kd) == expected
    assert all(torch.isfinite(v) and v > 0 for v in kd.values())
    sum(kd.values()).backward()
    student = d.student
    for i, layer in enumerate(student.decoder.layers):
        grads = [p.grad for p in layer.parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), i
    for module in (student.encoder, student.neck):
        assert any(p.grad is not None and p.grad.abs().sum() > 0
                   for p in module.parameters())
    assert all(p.grad is None for p in d.teacher.parameters())


@pytest.mark.parametrize('kind', ['dino', 'deformable'])
def test_identical_teacher_gives_kd_at_its_minimum(kind):
    """Teacher = student (same config and weights; the backbone's BN is
    frozen (norm_eval) and there is no dropout, so train mode computes as
    eval): the final layer's KD terms on the distillation queries are 0 —
    class KL, L1 and 1 - GIoU — also with a padded image (the memory's
    padding mask and valid ratios are each model's own)."""
    d = _build(kind, teacher=tiny_detr(kind))
    d.teacher.load_state_dict(d.student.state_dict())
    d.train()
    x, samples = _batch()
    samples[1].set_metainfo(dict(img_shape=(48, 56)))
    x[1, :, 48:] = 0
    x[1, :, :, 56:] = 0
    losses = d.loss(x, samples)
    assert losses['loss_kd_cls'].item() < 1e-6
    assert losses['loss_kd_bbox'].item() < 1e-4
    assert losses['loss_kd_iou'].item() < 1e-4
    # a different teacher is far from it
    other = _build(kind).loss(*_batch())
    assert other['loss_kd_cls'].item() > 1e-2


def _decoder_calls(d, x, samples):
    """The student decoder's call kwargs inside ``d.loss`` and the
    losses."""
    calls = []
    handle = d.student.decoder.register_forward_pre_hook(
        lambda m, a, kw: calls.append(kw), with_kwargs=True)
    try:
        losses = d.loss(x, samples)
    finally:
        handle.remove()
    return losses, calls


@pytest.mark.parametrize('weight', [0.0, 1.0])
def test_distillation_queries_do_not_leak_into_the_student_loss(weight):
    """The student's matching / denoising losses equal the plain student's
    loss() on the same batch, weights and random draws, key by key; the
    distillation queries run in a second decoder pass of their own (no
    denoising mask, only them); with KD weight 0 the gradients are the
    plain student's."""
    distill = {k: dict(v, loss_weight=weight) for k, v in DISTILL.items()}
    d = _build(distill=distill, deep_supervision=dict(stages=[0, 1]))
    d.train()
    x, samples = _batch()
    torch.manual_seed(1)
    plain = d.student.loss(x, samples)
    sum(plain.values()).backward()
    plain_grads = {n: p.grad.clone() for n, p in
                   d.student.named_parameters() if p.grad is not None}
    d.student.zero_grad()
    torch.manual_seed(1)
    losses, calls = _decoder_calls(d, x, samples)
    assert set(losses) - set(_terms(losses)) == set(plain)
    for key, value in plain.items():
        assert torch.equal(losses[key], value), key
    # pass 1: matching + denoising queries under the denoising mask;
    # pass 2: the distillation queries alone, unmasked
    matching, distillation = calls
    assert matching['query'].shape[1] == \
        matching['self_attn_mask'].shape[0] > d.student.num_queries
    assert distillation['query'].shape[1] == 12 + 6
    assert distillation['self_attn_mask'] is None
    if weight == 0:
        sum(losses.values()).backward()
        for name, p in d.student.named_parameters():
            if name in plain_grads:
                torch.testing.assert_close(p.grad, plain_grads[name],
                                           rtol=1e-6, atol=1e-9, msg=name)
            else:
                assert p.grad is None or not p.grad.any(), name


def test_teacher_idle_while_distillation_is_off():
    d = _build(deep_supervision=dict(stages=[1]))
    d.train()
    d.distill_scale = 0.0
    calls = []
    d.teacher_runner.prepare = lambda: calls.append(1)
    losses = d.loss(*_batch())
    assert not _terms(losses) and not calls


def _outputs(d, x, samples):
    """Inside ``d.loss``: the student head's outputs on the distillation
    queries (its second call), the teacher head's, and the losses."""
    seen = {}
    handles = [
        d.student.bbox_head.register_forward_hook(
            lambda m, a, out: seen.setdefault('s', []).append(out)),
        d.teacher.bbox_head.register_forward_hook(
            lambda m, a, out: seen.setdefault('t', []).append(out)),
        d.student.decoder.register_forward_pre_hook(
            lambda m, a, kw: seen.setdefault('ref', []).append(
                kw['reference_points']), with_kwargs=True),
    ]
    try:
        torch.manual_seed(3)
        losses = d.loss(x, samples)
    finally:
        for h in handles:
            h.remove()
    assert len(seen['s']) == 2 and len(seen['t']) == 1
    return losses, seen['s'][1], seen['t'][0], seen['ref'][1]


def _binary_kl(p_s, p_t):
    p_s, p_t = p_s.double(), p_t.double()
    return p_t * (p_t.log() - p_s.log()) + \
        (1 - p_t) * ((1 - p_t).log() - (1 - p_s).log())


def _xyxy(b):
    cx, cy, w, h = b.double().unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def _giou(a, b):
    a, b = _xyxy(a), _xyxy(b)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    lt, rb = torch.max(a[:, :2], b[:, :2]), torch.min(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = area(a) + area(b) - inter
    hull = (torch.max(a[:, 2:], b[:, 2:]) -
            torch.min(a[:, :2], b[:, :2])).prod(-1)
    iou = inter / union
    return iou - (hull - union) / hull


def _hand_kd(s_cls, s_box, t_cls, t_box):
    """Mean binary KL over queries; L1 (x5) and 1 - GIoU (x2) weighted by
    the teacher's top class probability."""
    kl = _binary_kl(s_cls.sigmoid(), t_cls.sigmoid()).sum(-1).mean()
    w = t_cls.double().sigmoid().max(-1).values.flatten()
    s, t = s_box.flatten(0, 1), t_box.flatten(0, 1)
    l1 = (w * (s.double() - t.double()).abs().sum(-1)).sum() / w.sum()
    giou = (w * (1 - _giou(s, t))).sum() / w.sum()
    return dict(cls=kl, bbox=5 * l1, iou=2 * giou)


def test_kd_terms_by_hand_at_every_layer():
    """The distillation queries are the teacher's top proposals (its own
    pre_decoder) then random boxes of the configured size; loss_kd_* (the
    student's last layer) and ds<i>.loss_kd_* (layer i, x its stage
    weight) against the teacher's final layer, by hand."""
    d = _build(deep_supervision=dict(stages=[1, 0],
                                     stage_weights=[0.25, 0.5]),
               queries=dict(QUERIES, random_wh=(0.1, 0.3)))
    d.train()
    x, samples = _batch()
    losses, (s_cls, s_box), (t_cls, t_box), boxes = _outputs(d, x, samples)
    assert s_cls.shape[:3] == (3, 2, 18) and t_cls.shape[:3] == (2, 2, 18)

    t = d.teacher

    def proposals(y):
        enc_in, _ = t.pre_transformer(t.extract_feat(y), samples)
        return t.pre_decoder(**t.forward_encoder(**enc_in))[0][
            'reference_points']

    torch.testing.assert_close(boxes[:, :12],
                               d.teacher_forward(proposals, x)[:, :12])
    wh = boxes[:, 12:, 2:]
    assert ((wh >= 0.1) & (wh <= 0.3)).all()

    # stages sorted: ds0 = layer 0 (weight 0.5), ds1 = layer 1 (0.25)
    for prefix, layer, w in (('', 2, 1.0), ('ds0.', 0, 0.5),
                             ('ds1.', 1, 0.25)):
        hand = _hand_kd(s_cls[layer].detach(), s_box[layer].detach(),
                        t_cls[-1], t_box[-1])
        for term, value in hand.items():
            torch.testing.assert_close(
                losses[f'{prefix}loss_kd_{term}'].double(), w * value,
                rtol=1e-4, atol=1e-7, msg=f'{prefix}{term}')


# ------------------------------------------------------------ refusals
def _plain_deformable():
    m = tiny_detr('deformable')
    m.update(as_two_stage=False, with_box_refine=False)
    return m


@pytest.mark.parametrize('case,error,words', [
    ('plain_deformable', ValueError, ['as_two_stage=False', 'DINO']),
    ('dense_teacher', ValueError, ['query-based', 'dense']),
    ('classes', ValueError, ['class count', 'student 6', 'teacher 5']),
    ('proposals', ValueError, ['num_proposals=40', 'num_queries=30']),
    ('softmax_kd', ValueError, ['KDLoss', 'SigmoidKDLoss']),
    ('box_term', KeyError, ["'box'", "'bbox'"]),
    ('levels', ValueError, ['levels', 'decoder']),
    ('gt_weight', ValueError, ['gt_weight', 'own loss']),
    ('stages', ValueError, ['valid: 0..1', 'decoder layer 1']),
    ('channels', ValueError, ['channels', 'no']),
])
def test_refused_at_build(case, error, words):
    from helpers.det_models import tiny_detector
    kwargs = dict(
        plain_deformable=dict(teacher=_plain_deformable()),
        dense_teacher=dict(teacher=tiny_detector('retinanet')),
        classes=dict(teacher=tiny_detr(num_classes=5, queries=30)),
        proposals=dict(queries=dict(num_proposals=40)),
        softmax_kd=dict(distill=dict(cls=dict(type='mmkd.KDLoss'))),
        box_term=dict(distill=dict(box=dict(type='L1Loss'))),
        levels=dict(distill=dict(cls=dict(type='mmkd.SigmoidKDLoss',
                                          levels=[0]))),
        gt_weight=dict(deep_supervision=dict(stages=[0], gt_weight=1.0)),
        stages=dict(deep_supervision=dict(stages=[2])),
        channels=dict(deep_supervision=dict(stages=[0], channels=64)),
    )[case]
    with pytest.raises(error) as err:
        _build(**kwargs)
    msg = str(err.value)
    assert all(w in msg for w in words), msg
