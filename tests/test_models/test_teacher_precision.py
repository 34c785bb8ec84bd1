"""The teacher's precision and memory format: formats, fp32 outputs, parity
with an fp32 teacher, moves, and the fall-back messages."""
import pytest
import torch
from mmengine.registry import DefaultScope, init_default_scope

import mmkd  # noqa: F401
import mmkd.models.distillers.teacher as teacher_mod
import mmkd.utils.precision as precision
from helpers.cls_models import tiny_classifier
from helpers.det_models import tiny_detector
from helpers.seg_models import tiny_segmentor
from mmkd.losses import KDLoss, PixelKDLoss, sigmoid_kd_loss
from mmkd.models import (ClassificationDistiller, DetectionDistiller,
                         SegmentationDistiller)

# The KD loss from bf16 teacher outputs vs from the same teacher in fp32,
# relative difference measured on these random-init tiny teachers: dense
# detection (sigmoid KD, 5 levels) <= 1e-4 (max logit difference 0.017),
# segmentation (pixel KD) 1e-5, classification (KD) 6e-4. Stated tolerance:
KD_PARITY_RTOL = 5e-3


@pytest.fixture
def bf16_native(monkeypatch):
    """Pretend the device runs bf16 fast (any CPU can still run it)."""
    monkeypatch.setattr(precision, 'bf16_support', lambda device: 'fast')


@pytest.fixture
def no_bf16(monkeypatch):
    monkeypatch.setattr(precision, 'bf16_support', lambda device: None)


@pytest.fixture
def logged(monkeypatch):
    seen = []
    monkeypatch.setattr(
        teacher_mod, 'print_log',
        lambda msg, logger=None, level=None: seen.append((level, msg)))
    return seen


def _prepared(d):
    """The teacher as its first forward formats it (precision resolved for
    its device, weights cast, channels-last)."""
    d.teacher_runner.prepare()
    return d


def _det(kind='retinanet', **kwargs):
    init_default_scope('mmdet')
    return _prepared(DetectionDistiller(
        student=tiny_detector(kind, width=8),
        teacher=tiny_detector(kind, width=16), **kwargs))


def _seg(**kwargs):
    init_default_scope('mmseg')
    return _prepared(SegmentationDistiller(
        student=tiny_segmentor('pspnet', 8),
        teacher=tiny_segmentor('pspnet', 16), **kwargs))


def _cls(**kwargs):
    with DefaultScope.overwrite_default_scope('mmkd'):
        return _prepared(ClassificationDistiller(
            student=tiny_classifier(width=4),
            teacher=tiny_classifier(width=8), **kwargs))


def _pair(build, **kwargs):
    """An fp32 and a bf16 distiller with the same student and teacher
    weights (the bf16 teacher is the fp32 one, rounded)."""
    torch.manual_seed(0)
    d32 = build(teacher_precision='fp32', **kwargs)
    d32.teacher_runner.reset_precision()
    d32.teacher.init_weights()
    d16 = build(teacher_precision='bf16', **kwargs)
    d16.teacher_runner.reset_precision()  # load fp32 weights, cast again
    d16.student.load_state_dict(d32.student.state_dict())
    d16.teacher.load_state_dict(d32.teacher.state_dict())
    return _prepared(d32), _prepared(d16)


def _images(n=2, size=64):
    return torch.randn(n, 3, size, size,
                       generator=torch.Generator().manual_seed(1))


def _dense(d, x):
    t = d.teacher
    return d.teacher_forward(lambda y: t.bbox_head(t.extract_feat(y)), x)


def _conv_weights(model):
    return [m.weight for m in model.modules()
            if isinstance(m, torch.nn.Conv2d)]


def test_formats_and_fp32_outputs(bf16_native):
    d = _det(teacher_precision='bf16')
    assert d.teacher_dtype == torch.bfloat16
    assert all(p.dtype == torch.bfloat16 for p in d.teacher.parameters())
    assert all(b.dtype == torch.bfloat16 for b in d.teacher.buffers()
               if b.is_floating_point())
    convs = _conv_weights(d.teacher)
    assert convs and all(
        w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    # the student is untouched
    assert all(p.dtype == torch.float32 for p in d.student.parameters())
    assert all(w.is_contiguous() for w in _conv_weights(d.student))
    cls, box = _dense(d, _images())
    for t in cls + box:
        assert t.dtype == torch.float32 and t.is_contiguous()
    # options off: an fp32, contiguous teacher
    d = _det(teacher_precision='fp32', teacher_channels_last=False)
    assert all(p.dtype == torch.float32 for p in d.teacher.parameters())
    assert all(w.is_contiguous() for w in _conv_weights(d.teacher))


def test_kd_parity_dense_detection(bf16_native):
    d32, d16 = _pair(_det)
    x = _images()
    s_cls = d32.student.bbox_head(d32.student.extract_feat(x))[0]
    c = d32.student.bbox_head.cls_out_channels
    for s, t32, t16 in zip(s_cls, _dense(d32, x)[0], _dense(d16, x)[0]):
        ref = sigmoid_kd_loss(s, t32, channels=c)
        got = sigmoid_kd_loss(s, t16, channels=c)
        assert got.item() == pytest.approx(ref.item(), rel=KD_PARITY_RTOL)
        assert not torch.equal(t16, t32)  # the bf16 path did run


def test_two_stage_rois_stay_fp32(bf16_native):
    d32, d16 = _pair(_det, kind='faster_rcnn')
    x = _images()
    g = torch.Generator().manual_seed(2)
    xy = torch.rand(16, 2, generator=g) * 40
    rois = torch.cat([torch.zeros(16, 1), xy, xy + 8 + 0.37], 1)
    rois[8:, 0] = 1  # second image

    def cls_scores(d):
        t = d.teacher
        seen = []
        layer = t.roi_head.bbox_roi_extractor.roi_layers[0]
        hook = layer.register_forward_hook(
            lambda m, args, out: seen.append(args))
        out = d.teacher_forward(
            lambda y, r: t.roi_head._bbox_forward(t.extract_feat(y), r)
            ['cls_score'], x, rois)
        hook.remove()
        return out, seen

    ref, _ = cls_scores(d32)
    got, seen = cls_scores(d16)
    assert got.dtype == torch.float32
    feats, seen_rois = seen[0]
    assert feats.dtype == torch.float32 and seen_rois.dtype == torch.float32
    assert torch.equal(seen_rois, rois)  # coordinates not rounded
    assert KDLoss()(ref.clone(), got).item() < 1e-3
    assert KDLoss()(torch.zeros_like(ref), got).item() == pytest.approx(
        KDLoss()(torch.zeros_like(ref), ref).item(), rel=KD_PARITY_RTOL)


def test_mmcv_ops_run_in_fp32_contiguous(bf16_native):
    """A teacher with deformable convolutions (mmcv's CPU kernels take no
    bf16 and refuse channels-last maps): they keep fp32 contiguous weights
    and get fp32 contiguous inputs."""
    from mmcv.ops import ModulatedDeformConv2d

    def build(**kwargs):
        init_default_scope('mmdet')
        teacher = tiny_detector('retinanet', width=16)
        teacher.backbone.update(  # a bottleneck ResNet: BasicBlock has no DCN
            depth=50, stage_with_dcn=(False, False, True, True),
            dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False))
        teacher.neck.in_channels = [64, 128, 256, 512]
        return DetectionDistiller(student=tiny_detector('retinanet', width=8),
                                  teacher=teacher, **kwargs)

    d32, d16 = _pair(build)
    dcns = [m for m in d16.teacher.modules()
            if isinstance(m, ModulatedDeformConv2d)]
    assert dcns
    for m in dcns:
        assert m.weight.dtype == torch.float32 and m.weight.is_contiguous()
    x = _images()
    for t32, t16 in zip(_dense(d32, x)[0], _dense(d16, x)[0]):
        assert t16.dtype == torch.float32
        torch.testing.assert_close(t16, t32, atol=0.05, rtol=0.05)


def test_kd_parity_segmentation_and_classification(bf16_native):
    d32, d16 = _pair(_seg)
    x = _images()
    s = d32.student.decode_head(d32.student.extract_feat(x))
    t32, t16 = (d.teacher_forward(
        lambda y, t=d.teacher: t.decode_head(t.extract_feat(y)), x)
        for d in (d32, d16))
    assert t16.dtype == torch.float32
    assert PixelKDLoss()(s, t16).item() == pytest.approx(
        PixelKDLoss()(s, t32).item(), rel=KD_PARITY_RTOL)
    c32, c16 = _pair(_cls)
    x = _images(4, 32)
    s = c32.student.model(x)
    t32, t16 = c32.teacher_logits(x), c16.teacher_logits(x)
    assert t16.dtype == torch.float32
    assert KDLoss()(s, t16).item() == pytest.approx(
        KDLoss()(s, t32).item(), rel=KD_PARITY_RTOL)


def test_eval_teacher_uses_the_same_precision(bf16_native):
    from mmdet.structures import DetDataSample
    d32, d16 = _pair(_det)
    x = _images()
    preds = []
    for d in (d32, d16):
        d.eval_teacher = True
        d.teacher.test_cfg.score_thr = 0.0
        d.eval()
        samples = [DetDataSample(metainfo=dict(
            img_shape=(64, 64), ori_shape=(64, 64), scale_factor=(1., 1.),
            batch_input_shape=(64, 64), pad_shape=(64, 64)))
            for _ in range(2)]
        preds.append(d(x, samples, mode='predict'))
    for p32, p16 in zip(*preds):
        inst = p16.pred_instances
        assert inst.bboxes.dtype == torch.float32
        assert inst.scores.dtype == torch.float32
        # the top boxes agree to a fraction of a pixel
        k = min(5, len(inst))
        assert torch.allclose(inst.scores[:k], p32.pred_instances.scores[:k],
                              atol=1e-2)


def test_moves_keep_the_configured_precision(monkeypatch):
    monkeypatch.setattr(
        precision, 'bf16_support',
        lambda device: 'fast' if torch.device(device).type == 'cpu' else None)
    d = _det(teacher_precision='bf16')
    d.float()
    assert d.teacher_dtype == torch.bfloat16
    d.to(torch.float64)
    assert all(p.dtype == torch.float64 for p in d.student.parameters())
    assert all(p.dtype == torch.bfloat16 for p in d.teacher.parameters())
    d.half()
    assert all(p.dtype == torch.bfloat16 for p in d.teacher.parameters())
    assert all(w.is_contiguous(memory_format=torch.channels_last)
               for w in _conv_weights(d.teacher))
    d.to('cpu')
    assert next(d.teacher.parameters()).device.type == 'cpu'
    # a move to another device re-resolves the precision there (the meta
    # device has no native bf16: fp32)
    d.to('meta')
    assert next(d.teacher.parameters()).device.type == 'meta'
    assert next(d.student.parameters()).device.type == 'meta'
    assert d.teacher_dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_move():
    d = _det(teacher_precision='fp16').cuda()
    assert d.teacher_dtype == torch.float16
    assert next(d.teacher.parameters()).is_cuda
    cls, _ = _dense(d, _images().cuda())
    assert cls[0].dtype == torch.float32


def test_fallbacks_are_logged(no_bf16, logged):
    d = _det(teacher_precision='bf16')
    assert d.teacher_dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in d.teacher.parameters())
    level, msg = logged[-1]
    assert level == 30 and "'bf16'" in msg and 'no bf16 instructions' in msg
    d = _det(teacher_precision='fp16')
    assert d.teacher_dtype == torch.float32
    level, msg = logged[-1]
    assert level == 30 and "'fp16' is not supported on cpu" in msg
    n = len(logged)
    d = _det()  # 'auto'
    assert d.teacher_dtype == torch.float32
    assert len(logged) == n + 1 and logged[-1][0] == 20
    assert "'auto'" in logged[-1][1]
    n = len(logged)
    d = _det(teacher_precision='fp32')
    assert len(logged) == n  # asked for and got: nothing to say


def test_auto_is_bf16_where_native(bf16_native, logged):
    assert _det().teacher_dtype == torch.bfloat16
    assert not logged


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match=r"teacher_precision: 'int8'"):
        _det(teacher_precision='int8')


def test_cpu_capability_rule(monkeypatch, logged):
    for flags, support, auto in (
            ({'amx_bf16', 'avx512_bf16'}, 'fast', torch.bfloat16),
            ({'avx512_bf16', 'avx2'}, 'slow', torch.float32),
            ({'avx512_f'}, None, torch.float32)):
        monkeypatch.setattr(precision, 'cpu_flags', lambda f=flags: f)
        assert precision.bf16_support('cpu') == support
        dtype, msg = precision.resolve_precision('auto', 'cpu')
        assert dtype == auto and (msg is None) == (support == 'fast')
    # AVX512-BF16 without AMX: bf16 when asked for, with a warning
    monkeypatch.setattr(precision, 'cpu_flags', lambda: {'avx512_bf16'})
    d = _det(teacher_precision='bf16')
    assert d.teacher_dtype == torch.bfloat16
    assert 'no AMX-BF16' in logged[-1][1] and logged[-1][0] == 30


def _fp32_state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_weights_stay_exact_fp32_until_the_first_forward(monkeypatch):
    """'auto' on an AMX-like host: nothing is cast at build; the precision
    is resolved at the first forward for the device the teacher is on
    then (simulated: a device without bf16), from the exact weights."""
    monkeypatch.setattr(precision, 'bf16_support', lambda device: 'fast')
    init_default_scope('mmdet')
    d = DetectionDistiller(student=tiny_detector('retinanet', width=8),
                           teacher=tiny_detector('retinanet', width=16))
    ref = _fp32_state(d.teacher)
    assert all(v.dtype == torch.float32 for v in ref.values()
               if v.is_floating_point())
    monkeypatch.setattr(precision, 'bf16_support', lambda device: None)
    _dense(d, _images())
    assert d.teacher_dtype == torch.float32
    for k, v in d.teacher.state_dict().items():
        assert torch.equal(v, ref[k]), k


def test_a_cast_teacher_goes_back_to_its_exact_fp32_weights(monkeypatch):
    """After a bf16 cast, a move (here its first step, reset_precision)
    restores the exact fp32 weights, never up-cast bf16 ones."""
    monkeypatch.setattr(precision, 'bf16_support', lambda device: 'fast')
    init_default_scope('mmdet')
    d = DetectionDistiller(student=tiny_detector('retinanet', width=8),
                           teacher=tiny_detector('retinanet', width=16))
    ref = _fp32_state(d.teacher)
    _dense(d, _images())
    assert d.teacher_dtype == torch.bfloat16
    d.teacher_runner.reset_precision()
    assert d.teacher_dtype == torch.float32
    for k, v in d.teacher.state_dict().items():
        assert torch.equal(v, ref[k]), k
        if v.dim() == 4:
            assert v.is_contiguous()


# The KD term of a step under the student's CPU autocast (as mmengine's
# AmpOptimWrapper runs loss()) vs the same step without autocast: the
# teacher never runs in the student's autocast dtype, and the KD losses are
# computed from fp32 logits. Measured relative differences on these tiny
# models: <= 2e-3 (fp16 student autocast), <= 1e-2 (bf16). Stated tolerance:
AMP_KD_RTOL = 3e-2


@pytest.mark.parametrize('amp_dtype', [torch.bfloat16, torch.float16])
@pytest.mark.parametrize('teacher_precision', ['fp32', 'bf16'])
@pytest.mark.parametrize('task', ['det', 'seg', 'cls'])
def test_student_autocast_never_reaches_the_teacher(bf16_native, task,
                                                    teacher_precision,
                                                    amp_dtype):
    from test_classification_distiller import batch as cls_batch
    from test_detection_distiller import _batch as det_batch
    from test_segmentation_distiller import _batch as seg_batch
    build, batch = dict(det=(_det, det_batch), seg=(_seg, seg_batch),
                        cls=(_cls, None))[task]
    torch.manual_seed(0)
    d = build(teacher_precision=teacher_precision)
    d.eval()  # the same BN statistics in both passes
    if task == 'cls':
        data = d.data_preprocessor(cls_batch(4), training=True)
        x, samples = data['inputs'], data['data_samples']
    else:
        x, samples = batch()
    seen = []
    conv = _conv_weights(d.teacher)[0]
    first_conv = next(m for m in d.teacher.modules()
                      if isinstance(m, torch.nn.Conv2d) and m.weight is conv)
    first_conv.register_forward_pre_hook(
        lambda m, args: seen.append(torch.is_autocast_enabled('cpu')
                                    and torch.get_autocast_dtype('cpu')))
    ref = {k: v for k, v in d.loss(x, samples).items() if 'loss_kd' in k}
    with torch.autocast('cpu', dtype=amp_dtype):
        got = {k: v for k, v in d.loss(x, samples).items() if 'loss_kd' in k}
    assert ref and set(got) == set(ref)
    for k in ref:
        assert got[k].dtype == torch.float32, k
        assert torch.isfinite(got[k])
        assert got[k].item() == pytest.approx(ref[k].item(), rel=AMP_KD_RTOL,
                                              abs=1e-6), k
    # inside the teacher: no autocast (fp32) or its own dtype (bf16) only
    own = False if teacher_precision == 'fp32' else torch.bfloat16
    assert seen and all(s == own for s in seen), seen
