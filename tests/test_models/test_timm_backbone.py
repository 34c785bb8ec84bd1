"""TimmBackbone: shapes, freezing, inside mmdet/mmseg models, checkpoints."""
import copy
import os.path as osp

import pytest
import timm
import torch
from mmengine.registry import DefaultScope

import mmkd  # noqa: F401
from helpers import ROOT
from helpers.det_models import tiny_detector
from helpers.seg_models import tiny_segmentor
from mmkd.models import TimmBackbone

MASK_RCNN_CFG = osp.join(ROOT, 'configs', 'det',
                         'mask-rcnn_timm-resnet50_fpn_1x_coco.py')
# timm 1.0.31's test models: channels at the given feature indices (read
# off timm's model definitions; strides are those of a ResNet/ConvNeXt)
SHAPES = {
    'test_resnet': ((1, 2, 3, 4), [32, 48, 192, 96], [4, 8, 16, 32]),
    'test_convnext': ((0, 1, 2, 3), [24, 32, 48, 64], [4, 8, 16, 32]),
    'test_vit': ((3, 4, 5), [64, 64, 64], [16, 16, 16]),
    # NHWC inside timm: the wrapper returns NCHW
    'test_mambaout': ((0, 1, 2, 3), [16, 32, 48, 64], [4, 8, 16, 32]),
}


def _build(cfg: dict, scope: str):
    from mmengine.registry import MODELS
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(cfg)


def _classifier(name: str = 'test_resnet', seed: int = 1, **kwargs):
    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False, **kwargs)
    # non-trivial BN statistics, so loading them is checked too
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    return model.eval()


def _assert_loaded(backbone: TimmBackbone, classifier) -> None:
    """Every backbone tensor equals the classifier's (for models whose
    feature extractor keeps the classifier's module names under model.)."""
    state = backbone.state_dict()
    assert state, 'empty backbone'
    own = classifier.state_dict()
    for key, value in state.items():
        assert key.startswith('model.')
        assert torch.equal(value, own[key[len('model.'):]]), key


# ---------------------------------------------------------------- shapes
@pytest.mark.parametrize('name', sorted(SHAPES))
def test_channels_and_strides(name):
    out_indices, channels, strides = SHAPES[name]
    backbone = TimmBackbone(name, out_indices=out_indices)
    assert backbone.out_channels == channels
    assert backbone.strides == strides
    outs = backbone(torch.randn(2, 3, 64, 64))
    assert isinstance(outs, tuple)
    assert [tuple(o.shape) for o in outs] == [
        (2, c, 64 // s, 64 // s) for c, s in zip(channels, strides)]


def test_frozen_stages_and_norm_eval():
    backbone = TimmBackbone('test_resnet', frozen_stages=1, norm_eval=True)
    frozen = ('model.conv1.', 'model.bn1.', 'model.layer1.')
    for name, p in backbone.named_parameters():
        assert p.requires_grad != name.startswith(frozen), name
    backbone.train()
    assert not backbone.model.layer1.training
    assert not backbone.model.conv1.training
    assert backbone.model.layer2.training
    assert backbone.model.layer2[0].conv1.training
    bns = [m for m in backbone.modules()
           if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not m.training for m in bns)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    backbone(torch.randn(2, 3, 64, 64))
    for k, v in backbone.state_dict().items():
        assert torch.equal(v, before[k]), f'{k} changed in training'

    # without norm_eval BN statistics move, and nothing is frozen by default
    free = TimmBackbone('test_resnet').train()
    assert all(p.requires_grad for p in free.parameters())
    mean = free.model.layer2[0].bn1.running_mean.clone()
    free(torch.randn(2, 3, 64, 64))
    assert not torch.equal(mean, free.model.layer2[0].bn1.running_mean)


def test_frozen_stages_of_a_flattened_and_a_wrapped_model():
    convnext = TimmBackbone('test_convnext', out_indices=(0, 1, 2, 3),
                            frozen_stages=0).train()
    for name, p in convnext.named_parameters():
        first = name.startswith(('model.stem_', 'model.stages_0.'))
        assert p.requires_grad != first, name
    assert not convnext.model.stages_0.training
    assert convnext.model.stages_1.training
    vit = TimmBackbone('test_vit', out_indices=(3, 4, 5),
                       frozen_stages=1).train()
    for name, p in vit.named_parameters():
        early = name.startswith(
            ('model.model.cls_token', 'model.model.pos_embed',
             'model.model.patch_embed.', 'model.model.blocks.0.',
             'model.model.blocks.1.'))
        assert p.requires_grad != early, name
    assert vit.model.training and vit.model.model.training
    assert not vit.model.model.blocks[1].training
    assert vit.model.model.blocks[2].training


@pytest.mark.parametrize('kwargs, match', [
    (dict(out_indices=(1, 5)), r'out_indices \(1, 5\).*"test_resnet".*0\.\.4'),
    (dict(frozen_stages=5), r'frozen_stages=5 .*0\.\.4 of "test_resnet"'),
    (dict(model_kwargs=dict(features_only=False)), r"\['features_only'\]"),
    (dict(checkpoint='x.pth', init_cfg=dict(type='Kaiming')),
     'either checkpoint \\("x.pth"\\) or init_cfg'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TimmBackbone('test_resnet', **kwargs)


# ------------------------------------------------------- in mmdet / mmseg
def _assert_gradients(backbone: TimmBackbone) -> None:
    """Every parameter has a gradient and it reaches the first conv (timm
    zero-initialises the last BN of each residual block, so gradients inside
    the residual branches may be exactly zero at the start)."""
    params = list(backbone.named_parameters())
    assert params
    for name, p in params:
        assert p.grad is not None, name
    name, first = params[0]
    assert name == 'model.conv1.0.weight'  # test_resnet's deep stem
    assert first.grad.abs().sum() > 0


def _det_batch(n=2, size=64):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, size, size, generator=g)
    samples = []
    for _ in range(n):
        s = DetDataSample(metainfo=dict(
            img_shape=(size, size), pad_shape=(size, size),
            batch_input_shape=(size, size), scale_factor=(1.0, 1.0)))
        s.gt_instances = InstanceData(
            bboxes=torch.tensor([[4.0, 6.0, 40.0, 44.0], [30, 20, 60, 62]]),
            labels=torch.tensor([1, 4]))
        samples.append(s)
    return x, samples


def _timm_detector(**backbone):
    cfg = tiny_detector('retinanet', width=8)
    cfg.backbone = dict(type='mmkd.TimmBackbone', model_name='test_resnet',
                        out_indices=(1, 2, 3, 4), **backbone)
    cfg.neck.in_channels = SHAPES['test_resnet'][1]
    return _build(cfg, 'mmdet')


def test_inside_an_mmdet_detector():
    from mmdet.models.detectors import RetinaNet
    from mmdet.registry import MODELS as MMDET_MODELS
    # mmdet's own registry reaches mmkd's module through the 'mmkd.' prefix
    with DefaultScope.overwrite_default_scope('mmdet'):
        assert MMDET_MODELS.get('mmkd.TimmBackbone') is TimmBackbone
    det = _timm_detector()
    assert isinstance(det, RetinaNet)
    assert isinstance(det.backbone, TimmBackbone)
    det.init_weights()
    det.train()
    losses = det.loss(*_det_batch())
    assert {'loss_cls', 'loss_bbox'} <= set(losses)
    total = sum(sum(v) if isinstance(v, list) else v
                for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total) and total > 0
    total.backward()
    _assert_gradients(det.backbone)


def test_inside_an_mmseg_segmentor():
    from mmengine.structures import PixelData
    from mmseg.models.segmentors import EncoderDecoder
    from mmseg.structures import SegDataSample
    _, channels, _ = SHAPES['test_resnet']
    cfg = tiny_segmentor('fcn', width=8)
    cfg.backbone = dict(type='mmkd.TimmBackbone', model_name='test_resnet',
                        out_indices=(1, 2, 3, 4))
    cfg.decode_head.update(in_channels=channels[3], in_index=3)
    cfg.auxiliary_head.update(in_channels=channels[2], in_index=2)
    seg = _build(cfg, 'mmseg')
    assert isinstance(seg, EncoderDecoder)
    assert isinstance(seg.backbone, TimmBackbone)
    seg.init_weights()
    seg.train()
    g = torch.Generator().manual_seed(0)
    samples = []
    for _ in range(2):
        s = SegDataSample(metainfo=dict(img_shape=(64, 64),
                                        pad_shape=(64, 64)))
        s.gt_sem_seg = PixelData(data=torch.randint(0, 7, (1, 64, 64),
                                                    generator=g))
        samples.append(s)
    losses = seg.loss(torch.randn(2, 3, 64, 64, generator=g), samples)
    assert {'decode.loss_ce', 'aux.loss_ce'} <= set(losses)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    _assert_gradients(seg.backbone)


# ------------------------------------------------------------ checkpoints
@pytest.mark.parametrize('wrap', ['plain', 'state_dict', 'model_prefix',
                                  'mmengine_backbone', 'ddp'])
def test_classifier_checkpoint_is_loaded(tmp_path, wrap):
    classifier = _classifier(num_classes=10)  # any head size
    state = classifier.state_dict()
    assert 'fc.weight' in state
    ckpt = {
        'plain': state,
        'state_dict': dict(state_dict=state, meta=dict(epoch=3)),
        # mmkd.TimmClassifier's keys
        'model_prefix': dict(state_dict={'model.' + k: v
                                         for k, v in state.items()}),
        # a model holding the classifier as `backbone`, plus other parts
        'mmengine_backbone': dict(state_dict={
            **{'backbone.' + k: v for k, v in state.items()},
            'neck.conv.weight': torch.zeros(2)}),
        'ddp': dict(model={'module.' + k: v for k, v in state.items()}),
    }[wrap]
    path = str(tmp_path / 'cls.pth')
    torch.save(ckpt, path)
    backbone = TimmBackbone('test_resnet', checkpoint=path)
    _assert_loaded(backbone, classifier)
    backbone.init_weights()
    _assert_loaded(backbone, classifier)


def test_checkpoint_survives_the_runners_init_weights(tmp_path):
    classifier = _classifier()
    path = str(tmp_path / 'student_final.pth')
    torch.save(dict(state_dict=classifier.state_dict()), path)
    det = _timm_detector(checkpoint=path, frozen_stages=1, norm_eval=True)
    _assert_loaded(det.backbone, classifier)
    det.init_weights()  # what Runner.train() calls on the whole model
    det.train()
    _assert_loaded(det.backbone, classifier)


def test_checkpoint_survives_a_timm_init_weights(tmp_path):
    """timm's HRNet feature extractor has its own ``init_weights()`` (it
    re-draws every conv): mmengine's recursion must not reach it."""
    from mmengine.model import BaseModule
    classifier = _classifier('hrnet_w18_small')
    path = str(tmp_path / 'hrnet.pth')
    torch.save(classifier.state_dict(), path)
    parent = BaseModule()  # stands for the detector the runner initialises
    parent.backbone = TimmBackbone('hrnet_w18_small', checkpoint=path)
    assert hasattr(parent.backbone.model, 'init_weights')
    _assert_loaded(parent.backbone, classifier)
    parent.init_weights()
    _assert_loaded(parent.backbone, classifier)


@pytest.mark.parametrize('name, out_indices', [('test_convnext', (0, 1, 2, 3)),
                                               ('test_vit', (3, 5))])
def test_checkpoint_of_renamed_feature_models(tmp_path, name, out_indices):
    """timm renames (``stages_0``) or wraps (``model.``) the modules of
    these feature extractors: compare features, not keys."""
    classifier = _classifier(name)
    path = str(tmp_path / 'cls.pth')
    torch.save(classifier.state_dict(), path)
    backbone = TimmBackbone(name, out_indices=out_indices,
                            checkpoint=path).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = classifier.forward_intermediates(
            x, indices=list(out_indices), intermediates_only=True)
        outs = backbone(x)
        fresh = TimmBackbone(name, out_indices=out_indices).eval()(x)
    assert len(outs) == len(expected)
    for o, e, f in zip(outs, expected, fresh):
        torch.testing.assert_close(o, e)
        assert not torch.allclose(o, f)  # it did load something


def test_missing_backbone_key_is_an_error(tmp_path):
    state = _classifier().state_dict()
    del state['layer2.0.conv1.weight']
    del state['fc.bias']  # head keys may go: not an error on their own
    path = str(tmp_path / 'broken.pth')
    torch.save(state, path)
    with pytest.raises(ValueError) as err:
        TimmBackbone('test_resnet', checkpoint=path)
    msg = str(err.value)
    assert path in msg and 'missing keys (1): layer2.0.conv1.weight' in msg
    assert 'fc.bias' not in msg
    # strict: a key the model does not have is an error too
    state = _classifier().state_dict()
    state['layer2.0.extra.weight'] = torch.zeros(1)
    torch.save(state, path)
    with pytest.raises(ValueError,
                       match=r'unexpected keys \(1\): layer2.0.extra.weight'):
        TimmBackbone('test_resnet', checkpoint=path)


def test_shape_mismatch_and_missing_file(tmp_path):
    state = _classifier().state_dict()
    state['layer1.0.conv1.weight'] = state['layer1.0.conv1.weight'][:4]
    path = str(tmp_path / 'other.pth')
    torch.save(state, path)
    with pytest.raises(ValueError, match='layer1.0.conv1.weight: model '
                       r'\(32, 32, 3, 3\) vs file \(4, 32, 3, 3\)') as err:
        TimmBackbone('test_resnet', checkpoint=path)
    assert path in str(err.value)
    missing = str(tmp_path / 'nowhere.pth')
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        TimmBackbone('test_resnet', checkpoint=missing)


# ---------------------------------------------------------------- config
def test_mask_rcnn_config():
    from mmengine.config import Config
    from mmengine.utils import import_modules_from_strings
    cfg = Config.fromfile(MASK_RCNN_CFG)
    assert cfg.default_scope == 'mmdet'
    assert cfg.custom_imports == dict(imports=['mmkd'],
                                      allow_failed_imports=False)
    backbone = cfg.model.backbone
    # _delete_ dropped every key of mmdet's ResNet
    assert set(backbone) == {'type', 'model_name', 'out_indices',
                             'checkpoint', 'frozen_stages', 'norm_eval'}
    assert backbone.type == 'mmkd.TimmBackbone'
    assert backbone.model_name == 'resnet50'
    assert backbone.checkpoint.startswith('work_dirs/')
    assert backbone.checkpoint.endswith('/student_final.pth')
    assert (backbone.frozen_stages, backbone.norm_eval) == (1, True)
    assert cfg.model.neck.in_channels == [256, 512, 1024, 2048]
    assert cfg.model.type == 'MaskRCNN'
    assert cfg.train_cfg.max_epochs == 12

    import_modules_from_strings(**cfg.custom_imports)
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.backbone.checkpoint = None
    det = _build(model_cfg, 'mmdet')
    assert isinstance(det.backbone, TimmBackbone)
    assert det.backbone.out_channels == list(cfg.model.neck.in_channels)
    assert det.backbone.strides == [4, 8, 16, 32]
    assert [c.conv.in_channels for c in det.neck.lateral_convs] == \
        det.backbone.out_channels
    det.eval()
    with torch.no_grad():
        feats = det.extract_feat(torch.zeros(1, 3, 64, 64))
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2, 1]
    # the file named in the config is required as it is
    with pytest.raises(FileNotFoundError, match='student_final.pth'):
        _build(cfg.model, 'mmdet')
