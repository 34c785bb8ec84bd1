"""The COCO distillation configs of ``configs/distill/det``.

Every file is parsed and checked against the pair it claims: the student is
its mmdet base config's model, the teacher an mmdet config whose model-zoo
weights (the URL of mmdet's own metafile for that config) the file names,
KD+DS = KD + deep supervision only. One config per detector family is built
(``teacher_ckpt=None``: tests download nothing) and runs one training step
on two 64x64 images (224x224 for DETR students): the KD+DS one, which holds
every setting of its KD config plus the deep-supervision branches.
"""
import ast
import functools
import glob
import importlib.util
import os.path as osp

import pytest
import torch
import yaml
from mmengine.config import Config

from helpers import ROOT

CFG_DIR = osp.join(ROOT, 'configs', 'distill', 'det')
CONFIGS = sorted(osp.basename(f) for f in glob.glob(osp.join(CFG_DIR, '*.py')))

# the KD config of each pair -> (student base, teacher, distillation terms,
# two-stage); its KD+DS config is the same name with 'kd-ds_' for 'kd_'
PAIRS = {
    'kd_retinanet_r101-to-r50_fpn_2x_coco.py': (
        'mmdet::retinanet/retinanet_r50_fpn_2x_coco.py',
        'mmdet::retinanet/retinanet_r101_fpn_2x_coco.py', {'cls'}, False),
    'kd_gfl_r101-to-r50_fpn_1x_coco.py': (
        'mmdet::gfl/gfl_r50_fpn_1x_coco.py',
        'mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py', {'cls', 'box'}, False),
    'kd_fcos_r101-to-r50-caffe_fpn_gn-head_1x_coco.py': (
        'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py',
        'mmdet::fcos/fcos_r101-caffe_fpn_gn-head-1x_coco.py', {'cls'},
        False),
    'kd_faster-rcnn_r101-to-r50_fpn_2x_coco.py': (
        'mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py',
        'mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py', {'cls'}, True),
    'kd_mask-rcnn_r101-to-r50_fpn_2x_coco.py': (
        'mmdet::mask_rcnn/mask-rcnn_r50_fpn_2x_coco.py',
        'mmdet::mask_rcnn/mask-rcnn_r101_fpn_2x_coco.py', {'cls'}, True),
    'kd_atss_r101-to-r50_fpn_1x_coco.py': (
        'mmdet::atss/atss_r50_fpn_1x_coco.py',
        'mmdet::atss/atss_r101_fpn_1x_coco.py', {'cls'}, False),
    'kd_tood_r101-to-r50_fpn_1x_coco.py': (
        'mmdet::tood/tood_r50_fpn_1x_coco.py',
        'mmdet::tood/tood_r101_fpn_ms-2x_coco.py', {'cls'}, False),
    'kd_rtmdet_s-to-tiny_8xb32-300e_coco.py': (
        'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py',
        'mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py', {'cls'}, False),
    'kd_rtmdet_l-to-m_8xb32-300e_coco.py': (
        'mmdet::rtmdet/rtmdet_m_8xb32-300e_coco.py',
        'mmdet::rtmdet/rtmdet_l_8xb32-300e_coco.py', {'cls'}, False),
    'kd_yolox_l-to-s_8xb8-300e_coco.py': (
        'mmdet::yolox/yolox_s_8xb8-300e_coco.py',
        'mmdet::yolox/yolox_l_8xb8-300e_coco.py', {'cls'}, False),
    'kd_cascade-rcnn_r101-to-r50_fpn_20e_coco.py': (
        'mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_20e_coco.py',
        'mmdet::cascade_rcnn/cascade-rcnn_r101_fpn_20e_coco.py', {'cls'},
        True),
    'kd_htc_r101-to-r50_fpn_20e_coco.py': (
        'mmdet::htc/htc_r50_fpn_20e_coco.py',
        'mmdet::htc/htc_r101_fpn_20e_coco.py', {'cls'}, True),
    'kd_dino_swin-l-to-r50_8xb2-12e_coco.py': (
        'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py',
        'mmdet::dino/dino-5scale_swin-l_8xb2-12e_coco.py',
        {'cls', 'bbox', 'iou'}, False),
}
# deep-supervision stages of the KD+DS configs: ResNet C3, C4; the CSP
# backbones' (RTMDet, YOLOX) first two outputs (strides 8 and 16)
DS_STAGES = [1, 2]
CSP_DS_STAGES = [0, 1]
# query-based (DETR family) students: their intermediate decoder layers
# (DINO: 0..4 of 6; no auxiliary heads are built)
QUERY_DS_STAGES = [0, 1, 2, 3, 4]


def _is_query(name: str) -> bool:
    return '_dino' in name


def _ds_stages(name: str) -> list:
    if _is_query(name):
        return QUERY_DS_STAGES
    return CSP_DS_STAGES if ('rtmdet' in name or 'yolox' in name) \
        else DS_STAGES


def _kd_name(name: str) -> str:
    return name.replace('kd-ds_', 'kd_', 1)


def _is_ds(name: str) -> bool:
    return name.startswith('kd-ds_')


@functools.lru_cache(maxsize=None)
def _load(name: str) -> Config:
    return Config.fromfile(osp.join(CFG_DIR, name))


@functools.lru_cache(maxsize=None)
def _mmdet_model(path: str) -> dict:
    from mmengine.hub import get_config
    return _strip_scope(get_config(path).model.to_dict())


def _strip_scope(obj):
    """Drop the ``_scope_`` keys mmengine adds to dicts from ``mmdet::``."""
    if isinstance(obj, dict):
        return {k: _strip_scope(v) for k, v in obj.items() if k != '_scope_'}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_strip_scope(v) for v in obj)
    return obj


def _base_of(name: str) -> str:
    """The ``_base_`` string of a config file."""
    tree = ast.parse(open(osp.join(CFG_DIR, name)).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_'
                for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f'{name} has no _base_')


def _mmdet_file(path: str) -> str:
    spec = importlib.util.find_spec('mmdet')
    return osp.join(
        osp.dirname(spec.origin), '.mim', 'configs', path.split('::', 1)[1])


@functools.lru_cache(maxsize=None)
def _zoo_weights(path: str) -> str:
    """The model-zoo URL mmdet's metafile lists for an ``mmdet::`` config."""
    rel = 'configs/' + path.split('::', 1)[1]
    metafile = osp.join(osp.dirname(_mmdet_file(path)), 'metafile.yml')
    with open(metafile) as f:
        models = yaml.safe_load(f)['Models']
    (entry, ) = [m for m in models if m['Config'] == rel]
    return entry['Weights']


def test_every_pair_has_kd_and_kd_ds_configs():
    expected = set(PAIRS) | {n.replace('kd_', 'kd-ds_', 1) for n in PAIRS}
    assert set(CONFIGS) == expected, (
        'configs/distill/det and PAIRS disagree: add new configs to PAIRS')


@pytest.mark.parametrize('name', CONFIGS)
def test_config(name):
    cfg = _load(name)
    student_base, teacher, distill, _ = PAIRS[_kd_name(name)]
    model = cfg.model
    assert model.type == 'mmkd.DetectionDistiller'
    assert cfg.default_scope == 'mmdet'
    assert 'mmkd' in cfg.custom_imports['imports']
    assert not cfg.custom_imports.get('allow_failed_imports', False)
    # the KD config inherits the student's mmdet config directly ...
    assert _base_of(_kd_name(name)) == student_base
    assert _strip_scope(model.student.to_dict()) == \
        _mmdet_model(student_base)
    # ... and its dataset, schedule and runtime stay the student's
    base = Config.fromfile(_mmdet_file(student_base))
    for key in ('train_dataloader', 'val_evaluator', 'train_cfg',
                'param_scheduler', 'optim_wrapper'):
        assert _strip_scope(cfg[key]) == _strip_scope(base[key]), key
    assert model.teacher == teacher
    assert osp.isfile(_mmdet_file(teacher)), teacher
    # the teacher's weights: mmdet's model zoo, by URL, for that config
    assert cfg.teacher_ckpt == model.teacher_ckpt == _zoo_weights(teacher)
    assert set(model.distill) == distill
    # the exported student config must stay plain mmdet: mmkd hooks go to
    # custom_hooks (dropped by the export), never to default_hooks; the
    # student's own custom hooks (EMA, pipeline / mode switches) stay
    hooks = [h['type'] for h in cfg.custom_hooks]
    assert hooks[-2:] == ['mmkd.StudentCheckpointHook', 'mmkd.RunInfoHook']
    assert _strip_scope(cfg.custom_hooks[:-2]) == \
        _strip_scope(base.get('custom_hooks', []))
    assert not any(str(h.get('type', '')).startswith('mmkd.')
                   for h in cfg.default_hooks.values() if h)
    # mmdet's schedule base batch stays: --auto-scale-lr works
    assert cfg.auto_scale_lr == base.auto_scale_lr
    # SyncBN only where mmdet's own config has it (tools/train.py makes it
    # BN on one CPU process)
    assert ('SyncBN' in cfg.pretty_text) == ('SyncBN' in base.pretty_text)
    assert 'find_unused_parameters' not in cfg
    if _is_ds(name):
        # KD+DS = the KD config + deep_supervision, nothing else
        assert _base_of(name) == './' + _kd_name(name)
        assert model.deep_supervision.stages == _ds_stages(name)
        kd = _load(_kd_name(name))
        assert {k: v for k, v in model.items()
                if k != 'deep_supervision'} == kd.model.to_dict()
        assert cfg.custom_hooks == kd.custom_hooks
    else:
        assert model.get('deep_supervision') is None


def _same_backbone(built, cfg: dict) -> bool:
    """Whether a built backbone is the one ``cfg`` describes (ResNets by
    depth, others by their parameter count)."""
    if 'depth' in cfg:
        return built.depth == cfg['depth']
    from mmengine.registry import MODELS, DefaultScope
    cfg = dict(cfg, init_cfg=None)
    with DefaultScope.overwrite_default_scope('mmdet'):
        ref = MODELS.build(cfg)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    return count(built) == count(ref)


def _batch(n=2, size=64, with_masks=True):
    """Two images with two boxes each (their masks, and a stuff map for
    HTC's semantic head)."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData, PixelData
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn(n, 3, size, size, generator=g)
    boxes = torch.tensor([[4.0, 6.0, 40.0, 44.0], [30., 20., 60., 62.]])
    masks = torch.zeros(2, size, size, dtype=torch.uint8)
    for m, (x0, y0, x1, y1) in zip(masks, boxes.int().tolist()):
        m[y0:y1, x0:x1] = 1
    samples = []
    for _ in range(n):
        sample = DetDataSample(
            metainfo=dict(img_shape=(size, size), pad_shape=(size, size),
                          batch_input_shape=(size, size),
                          scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(
            bboxes=boxes.clone(), labels=torch.tensor([1, 4]))
        if with_masks:  # (RTMDet's assigner takes masks as instance masks)
            sample.gt_instances.masks = BitmapMasks(masks.numpy(), size, size)
        sample.gt_sem_seg = PixelData(
            sem_seg=torch.randint(0, 183, (1, size, size), generator=g))
        samples.append(sample)
    return inputs, samples


@pytest.mark.parametrize('name', [n for n in CONFIGS if _is_ds(n)])
def test_build_and_one_loss_step(name):
    """Build the distiller as the runner would (without teacher weights),
    check the resolved pair, then one loss step: the student's task losses,
    every KD term on every level and the DS branches' terms are there,
    finite, and train the student and the branches, not the teacher."""
    from mmengine.registry import MODELS, DefaultScope
    from mmengine.utils import import_modules_from_strings

    cfg = _load(name)
    student_base, teacher_cfg, distill, two_stage = PAIRS[_kd_name(name)]
    import_modules_from_strings(**cfg.custom_imports)
    model_cfg = cfg.model.copy()
    model_cfg.teacher_ckpt = None
    if two_stage:  # fewer RoIs per image: the step's cost, not its wiring
        model_cfg.student.train_cfg.rpn_proposal.max_per_img = 64
        rcnn = model_cfg.student.train_cfg.rcnn
        for stage in rcnn if isinstance(rcnn, list) else [rcnn]:
            stage.sampler.num = 32
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(model_cfg)

    from mmkd.models import DetectionDistiller
    assert isinstance(model, DetectionDistiller)
    assert model.two_stage is two_stage
    assert model.query_based is _is_query(name)
    # the published pair: the resolved student / teacher are the mmdet
    # configs' backbones
    for net, path in ((model.student, student_base),
                      (model.teacher, teacher_cfg)):
        assert _same_backbone(net.backbone, _mmdet_model(path)['backbone'])
    assert not any(k.startswith('teacher') for k in model.state_dict())
    # the same normalisation on both sides
    assert model.teacher_runner._renorm is None
    assert set(model.kd_losses) == distill
    assert model.ds_stages == _ds_stages(name)
    assert len(model.ds_branches) == \
        (0 if _is_query(name) else len(_ds_stages(name)))
    assert all(not p.requires_grad for p in model.teacher.parameters())

    model.train()
    # TOOD reads the epoch from the message hub, as in a run
    from mmengine.logging import MessageHub
    MessageHub.get_current_instance().update_info('epoch', 0)
    size = 64
    if _is_query(name):
        # DETRs allocate level_embed uninitialised until init_weights()
        # (which would download the pretrained backbone); 224 px: DINO keeps
        # its top 900 encoder proposals, more than a 64 px image has
        for net in (model.student, model.teacher):
            torch.nn.init.normal_(net.level_embed)
        size = 224
    losses = model.loss(*_batch(size=size, with_masks=two_stage))
    names = set(losses)
    for term in distill:
        assert any(k.startswith(f'loss_kd_{term}') for k in names), term
    for i in range(len(_ds_stages(name))):
        assert any(k.startswith(f'ds{i}.loss_kd') for k in names), i
    # random pair: every class term is non-zero (box terms need positives)
    assert all(v > 0 for k, v in losses.items() if 'loss_kd_cls' in k)
    for term in distill:
        assert any(v > 0 for k, v in losses.items()
                   if k.startswith(f'loss_kd_{term}')), term
    if two_stage and model.student.roi_head.__class__.__name__ != \
            'StandardRoIHead':  # every cascade stage is distilled
        stages = model.student.roi_head.num_stages
        assert {f'loss_kd_cls_roi_s{k}' for k in range(stages)} <= names
    total = 0.
    for key, value in losses.items():
        if 'loss' not in key:
            continue
        value = sum(value) if isinstance(value, (list, tuple)) else value
        assert torch.isfinite(value), key
        total = total + value
    total.backward()
    grads = [p.grad for p in model.student.backbone.parameters()
             if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    for branch in model.ds_branches:
        assert any(p.grad is not None and p.grad.abs().sum() > 0
                   for p in branch.parameters())
    assert all(p.grad is None for p in model.teacher.parameters())
