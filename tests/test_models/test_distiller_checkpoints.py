"""Weights from the files users have: wrappers, the model's own key
upgrades, student_ckpt, load_from of a plain student, EMA copies."""
import copy

import pytest
import torch
import torch.nn as nn
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import load_checkpoint as mme_load_checkpoint

import mmkd  # noqa: F401
from helpers.det_models import tiny_detector
from mmkd.models import DetectionDistiller
from mmkd.utils import load_weights


def _detector(width=8, seed=0):
    init_default_scope('mmdet')
    from mmdet.registry import MODELS
    torch.manual_seed(seed)
    return MODELS.build(tiny_detector('retinanet', width=width))


def _same(a: nn.Module, b) -> bool:
    sa = a.state_dict()
    sb = b if isinstance(b, dict) else b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k])
                                          for k in sa)


def _save(tmp_path, name, obj) -> str:
    path = str(tmp_path / name)
    torch.save(obj, path)
    return path


# ------------------------------------------------------------ load_weights
@pytest.mark.parametrize('layout', ['bare', 'state_dict', 'model', 'ddp',
                                    'ema'])
def test_wrappers_users_meet(tmp_path, layout):
    source = _detector(seed=1)
    state = source.state_dict()
    other = {k: torch.zeros_like(v) for k, v in state.items()}
    ckpt = dict(
        bare=state,
        state_dict=dict(state_dict=state, meta=dict(epoch=2)),
        model=dict(model=state),
        ddp=dict(state_dict={'module.' + k: v for k, v in state.items()}),
        # timm: EMA weights preferred, as timm's own loader does
        ema=dict(state_dict=other, state_dict_ema=state))[layout]
    path = _save(tmp_path, 'det.pth', ckpt)
    model = _detector(seed=2)
    assert not _same(model, source)
    meta = load_weights(model, path)
    assert _same(model, source)
    assert meta == (dict(epoch=2) if layout == 'state_dict' else {})


def test_ckpt_key_chooses_the_entry(tmp_path):
    source = _detector(seed=1)
    live = _detector(seed=3).state_dict()
    path = _save(tmp_path, 'timm.pth',
                 dict(state_dict=live, state_dict_ema=source.state_dict()))
    model = _detector(seed=2)
    load_weights(model, path, ckpt_key='state_dict')
    assert _same(model, live)
    with pytest.raises(KeyError, match=r'timm.pth" has no "ema".*state_dict'):
        load_weights(model, path, ckpt_key='ema')


def test_the_models_own_loading_decides(tmp_path):
    """mmdet's own ``_load_from_state_dict`` upgrades apply: FCOS heads of
    v1-era files (``fcos_cls`` / ``fcos_reg`` / ``fcos_centerness``, no
    module versions) load strictly; so does a file without BatchNorm's
    ``num_batches_tracked`` (old files lack it)."""
    init_default_scope('mmdet')
    from mmdet.registry import MODELS
    torch.manual_seed(1)
    fcos = MODELS.build(tiny_detector('fcos', width=8))
    old = {k.replace('.conv_cls.', '.fcos_cls.')
            .replace('.conv_reg.', '.fcos_reg.')
            .replace('.conv_centerness.', '.fcos_centerness.'): v
           for k, v in fcos.state_dict().items()
           if not k.endswith('num_batches_tracked')}  # a plain dict
    assert 'bbox_head.fcos_cls.weight' in old
    path = _save(tmp_path, 'fcos_v1.pth', dict(state_dict=old))
    torch.manual_seed(2)
    fresh = MODELS.build(tiny_detector('fcos', width=8))
    assert not _same(fresh.bbox_head, fcos.bbox_head)
    load_weights(fresh, path)
    assert _same(fresh.bbox_head, fcos.bbox_head)
    assert torch.equal(fresh.backbone.conv1.weight, fcos.backbone.conv1.weight)


def test_mismatch_names_file_and_keys(tmp_path):
    state = _detector(seed=1).state_dict()
    del state['backbone.conv1.weight']
    state['bogus.weight'] = torch.zeros(1)
    state['bbox_head.retina_cls.bias'] = torch.zeros(3)
    path = _save(tmp_path, 'bad.pth', dict(state_dict=state))
    with pytest.raises(ValueError) as err:
        load_weights(_detector(), path, 'teacher')
    msg = str(err.value)
    assert f'teacher checkpoint "{path}"' in msg and 'RetinaNet' in msg
    assert 'missing keys (1): backbone.conv1.weight' in msg
    assert 'unexpected keys (1): bogus.weight' in msg
    assert 'shape mismatch bbox_head.retina_cls.bias: model (' in msg


# ------------------------------------------------------------ distillers
def _distiller(**kwargs):
    init_default_scope('mmdet')
    return DetectionDistiller(
        student=tiny_detector('retinanet', width=8),
        teacher=tiny_detector('retinanet', width=16),
        deep_supervision=dict(stages=[1]),
        teacher_precision='fp32',  # the teacher's weights compare exactly
        **kwargs)


def test_student_ckpt_survives_init_weights(tmp_path):
    student = _detector(width=8, seed=1)
    teacher = _detector(width=16, seed=2)
    s_path = _save(tmp_path, 'student.pth',
                   dict(state_dict=student.state_dict()))
    t_path = _save(tmp_path, 'teacher.pth', teacher.state_dict())
    torch.manual_seed(3)
    d = _distiller(student_ckpt=s_path, teacher_ckpt=t_path)
    assert _same(d.student, student) and _same(d.teacher, teacher)
    d.init_weights()  # what Runner.train() calls
    assert _same(d.student, student) and _same(d.teacher, teacher)
    # without student_ckpt the runner's init_weights() re-draws the head
    plain = _distiller(teacher_ckpt=t_path)
    plain.student.load_state_dict(student.state_dict())
    plain.init_weights()
    assert not _same(plain.student, student)


def test_student_ckpt_that_does_not_fit_names_it(tmp_path):
    wide = _detector(width=16)
    path = _save(tmp_path, 'wide.pth', dict(state_dict=wide.state_dict()))
    with pytest.raises(ValueError, match=f'student checkpoint "{path}"'):
        _distiller(student_ckpt=path)


def test_load_from_a_plain_student_checkpoint(tmp_path):
    student = _detector(width=8, seed=1)
    path = _save(tmp_path, 'retinanet.pth',
                 dict(state_dict=student.state_dict(), meta=dict()))
    d = _distiller()
    assert not _same(d.student, student)
    aux = {k: v.clone() for k, v in d.state_dict().items()
           if not k.startswith('student.')}
    assert any(k.startswith('ds') for k in aux)
    # Runner.load_checkpoint: mmengine's loader, non-strict
    mme_load_checkpoint(d, path, map_location='cpu', strict=False,
                        revise_keys=[(r'^module\.', '')])
    assert _same(d.student, student)
    for k, v in aux.items():  # the auxiliary heads are not in the file
        assert torch.equal(d.state_dict()[k], v), k

    # a distiller checkpoint (resume) still loads as before
    other = _distiller()
    mme_load_checkpoint(other, _save(tmp_path, 'run.pth',
                                     dict(state_dict=d.state_dict())),
                        map_location='cpu', strict=True)
    assert _same(other, d)

    # a file that is neither fails loudly, naming the keys
    bad = dict(student.state_dict())
    bad['bbox_head.extra.weight'] = torch.zeros(1)
    with pytest.raises(ValueError, match='unexpected keys.*extra.weight'):
        mme_load_checkpoint(_distiller(), _save(tmp_path, 'bad.pth', bad),
                            map_location='cpu', strict=False)


def test_deepcopy_shares_the_teacher():
    d = _distiller()
    twin = copy.deepcopy(d)  # what mmengine's EMAHook does
    assert twin.teacher is d.teacher
    assert twin.student is not d.student
    assert _same(twin.student, d.student)
