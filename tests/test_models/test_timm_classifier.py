"""TimmClassifier: forward modes, label losses on soft and hard targets,
checkpoint loading (surviving init_weights), export to plain timm, Lamb."""
import pytest
import timm
import timm.optim
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, OPTIMIZERS
from mmengine.runner.checkpoint import load_checkpoint as mme_load_checkpoint
from mmengine.structures import BaseDataElement

from mmkd.models import TimmClassifier

C = 4
VIT = dict(
    model_name='vit_tiny_patch16_224',
    model_kwargs=dict(
        img_size=32, patch_size=8, depth=2, embed_dim=32, num_heads=2))
CNN = dict(
    model_name='resnet18',
    model_kwargs=dict(
        layers=[1, 1, 1, 1], channels=(4, 8, 16, 32), stem_width=4))
MODELS_UNDER_TEST = pytest.mark.parametrize('spec', [VIT, CNN],
                                            ids=['vit', 'cnn'])


def build(spec, **kwargs):
    return MODELS.build(
        dict(type='mmkd.TimmClassifier', num_classes=C, **spec, **kwargs))


def plain_timm(spec, **kwargs):
    return timm.create_model(
        spec['model_name'], pretrained=False, num_classes=C,
        **spec['model_kwargs'], **kwargs)


def samples(labels, scores=None):
    out = []
    for i, label in enumerate(labels):
        s = BaseDataElement(gt_label=torch.tensor([label]))
        if scores is not None and scores[i] is not None:
            s.gt_score = torch.tensor(scores[i])
        out.append(s)
    return out


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(
        torch.equal(sa[k], sb[k]) for k in sa)


SOFT = [[0.7, 0.1, 0.1, 0.1], [0.05, 0.05, 0.3, 0.6]]
X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


# ------------------------------------------------------------ forward
@MODELS_UNDER_TEST
def test_three_modes(spec):
    model = build(spec).eval()
    logits = model(X, mode='tensor')
    assert logits.shape == (2, C)

    preds = model(X, samples([1, 2]), mode='predict')
    for sample, row in zip(preds, logits):
        assert sample.pred_score.shape == (C, )
        assert torch.allclose(sample.pred_score, row.softmax(-1))
        assert sample.pred_label.dtype == torch.long
        assert sample.pred_label.shape == (1, )
        assert sample.pred_label.item() == row.argmax().item()
    assert [s.gt_label.item() for s in preds] == [1, 2]  # kept

    model.train()
    losses = model(X, samples([1, 2], SOFT), mode='loss')
    assert set(losses) == {'loss_cls'}
    losses['loss_cls'].backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0

    with pytest.raises(RuntimeError, match='invalid mode "bogus"'):
        model(X, mode='bogus')


def test_targets_soft_hard_and_mixed():
    model = build(VIT)
    soft = model.targets(samples([0, 3], SOFT))
    assert soft.shape == (2, C) and torch.allclose(soft, torch.tensor(SOFT))
    hard = model.targets(samples([0, 3]))
    assert hard.dtype == torch.long and hard.tolist() == [0, 3]
    mixed = model.targets(samples([0, 3], [SOFT[0], None]))
    assert mixed.tolist() == [0, 3]  # not every sample has gt_score
    with pytest.raises(ValueError, match=r'sample 1 .*\(5,\).*4 classes'):
        model.targets(samples([0, 3], [SOFT[0], [0.2] * 5]))
    with pytest.raises(KeyError, match='sample 0 has neither'):
        model.targets([BaseDataElement()])


def test_label_losses_soft_and_hard_targets():
    logits = torch.randn(2, C, generator=torch.Generator().manual_seed(1))
    soft, hard = torch.tensor(SOFT), torch.tensor([0, 3])

    def loss_of(loss_cfg, data_samples):
        model = build(VIT, loss=loss_cfg)
        return model.loss_by_logits(logits, data_samples)['loss_cls'].item()

    # default: BCE (mean over B x C); hard labels -> one-hot, smoothing 0.1
    bce = dict(type='mmkd.TimmBinaryCrossEntropy')
    assert loss_of(bce, samples([0, 3], SOFT)) == pytest.approx(
        F.binary_cross_entropy_with_logits(logits, soft).item(), rel=1e-5)
    off = 0.1 / C
    onehot = torch.full((2, C), off)
    onehot[0, 0] = onehot[1, 3] = 0.9 + off
    assert loss_of(bce, samples([0, 3])) == pytest.approx(
        F.binary_cross_entropy_with_logits(logits, onehot).item(), rel=1e-5)
    assert build(VIT).loss_module.__class__ is timm.loss.BinaryCrossEntropy

    # soft-target CE: soft as is, hard labels one-hot encoded
    stce = dict(type='mmkd.TimmSoftTargetCrossEntropy')
    logp = logits.log_softmax(-1)
    assert loss_of(stce, samples([0, 3], SOFT)) == pytest.approx(
        -(soft * logp).sum(-1).mean().item(), rel=1e-5)
    assert loss_of(stce, samples([0, 3])) == pytest.approx(
        F.cross_entropy(logits, hard).item(), rel=1e-5)

    # label-smoothing CE: hard labels only; soft ones are a clear error
    lsce = dict(type='mmkd.TimmLabelSmoothingCrossEntropy', smoothing=0.2)
    assert loss_of(lsce, samples([0, 3])) == pytest.approx(
        F.cross_entropy(logits, hard, label_smoothing=0.2).item(), rel=1e-5)
    with pytest.raises(ValueError, match='takes hard labels'):
        loss_of(lsce, samples([0, 3], SOFT))


def test_model_kwargs_clash_and_drop_path():
    with pytest.raises(ValueError, match="must not set \\['num_classes'\\]"):
        build(dict(VIT, model_kwargs=dict(VIT['model_kwargs'],
                                          num_classes=3)))
    with pytest.raises(ValueError, match='pretrained'):
        build(dict(VIT, model_kwargs=dict(pretrained=True)))
    model = build(VIT, drop_path_rate=0.1, drop_rate=0.2)
    assert model.model.blocks[1].drop_path1.drop_prob == pytest.approx(0.1)
    assert model.model.head_drop.p == pytest.approx(0.2)


# ------------------------------------------------------------ checkpoints
@MODELS_UNDER_TEST
@pytest.mark.parametrize('layout', ['raw', 'state_dict', 'model', 'ema',
                                    'mmkd'])
def test_checkpoint_loads_and_survives_init_weights(spec, layout, tmp_path):
    torch.manual_seed(1)
    source = plain_timm(spec)
    plain = source.state_dict()
    if layout == 'raw':
        ckpt = plain
    elif layout == 'state_dict':
        ckpt = dict(state_dict=plain, meta=dict(epoch=3))
    elif layout == 'model':
        ckpt = dict(model={'module.' + k: v for k, v in plain.items()})
    elif layout == 'ema':  # timm prefers the EMA weights
        other = {k: torch.zeros_like(v) for k, v in plain.items()}
        ckpt = dict(state_dict=other, state_dict_ema=plain)
    else:  # an mmengine checkpoint of a TimmClassifier
        ckpt = dict(state_dict={'model.' + k: v for k, v in plain.items()})
    path = str(tmp_path / 'init.pth')
    torch.save(ckpt, path)

    torch.manual_seed(2)
    model = build(spec, checkpoint=path)
    assert same_weights(model.model, source)
    # what Runner.train() does: must not re-initialise the loaded weights
    model.init_weights()
    assert same_weights(model.model, source)
    # ... which timm's own init_weights would do (the trap is real)
    model.model.init_weights()
    assert not same_weights(model.model, source)


def test_bad_checkpoint_errors_name_file_and_keys(tmp_path):
    state = plain_timm(VIT).state_dict()
    state.pop('cls_token')
    state['bogus.weight'] = torch.zeros(1)
    path = str(tmp_path / 'bad.pth')
    torch.save(dict(state_dict=state), path)
    with pytest.raises(ValueError) as err:
        build(VIT, checkpoint=path)
    msg = str(err.value)
    assert path in msg and 'missing keys (1): model.cls_token' in msg
    assert 'unexpected keys (1): bogus.weight' in msg

    other = timm.create_model(
        VIT['model_name'], num_classes=7, **VIT['model_kwargs'])
    torch.save(other.state_dict(), path)
    with pytest.raises(ValueError, match=r'head\.weight: model \(4, 32\) vs '
                       r'file \(7, 32\)') as err:
        build(VIT, checkpoint=path)
    assert path in str(err.value)

    torch.save(dict(state_dict=dict(epoch=1)), path)
    with pytest.raises(TypeError, match='holds no state dict'):
        build(VIT, checkpoint=path)
    missing = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        build(VIT, checkpoint=missing)


# ------------------------------------------------------------ export
@MODELS_UNDER_TEST
def test_plain_export_round_trip(spec, tmp_path):
    torch.manual_seed(3)
    trained = build(spec)
    plain = TimmClassifier.plain_state_dict(trained.state_dict())
    assert not any(k.startswith('model.') for k in plain)
    path = str(tmp_path / 'student.pth')
    torch.save(dict(state_dict=plain, meta=dict(distilled_with='mmkd')), path)

    # plain timm, strict keys (its own loader, checkpoint_path=)
    torch.manual_seed(4)
    loaded = plain_timm(spec, checkpoint_path=path)
    assert same_weights(loaded, trained.model)
    fresh = plain_timm(spec)
    fresh.load_state_dict(plain, strict=True)
    assert torch.allclose(fresh.eval()(X), trained.eval()(X))

    # and back into TimmClassifier through the pre-hook
    back = build(spec)
    back.load_state_dict(plain, strict=True)
    assert same_weights(back.model, trained.model)
    back = build(spec)  # tools/test.py: mmengine's load_checkpoint
    mme_load_checkpoint(back, path, map_location='cpu', strict=True)
    assert same_weights(back.model, trained.model)
    back = build(spec)  # its own (prefixed) keys still load
    back.load_state_dict(trained.state_dict(), strict=True)
    assert same_weights(back.model, trained.model)

    # nested (a distiller's student): the prefix is respected
    holder = nn.Module()
    holder.student = build(spec)
    holder.load_state_dict({'student.' + k: v for k, v in plain.items()},
                           strict=True)
    assert same_weights(holder.student.model, trained.model)
    with pytest.raises(RuntimeError, match='bogus'):
        build(spec).load_state_dict(dict(plain, bogus=torch.zeros(1)))


def test_plain_state_dict_without_model_keys():
    with pytest.raises(ValueError, match='no "model." keys.*conv1.weight'):
        TimmClassifier.plain_state_dict({'conv1.weight': torch.zeros(1)})


# ------------------------------------------------------------ optimizer
def test_lamb_builds_through_mmengine_and_trains():
    model = build(
        VIT,
        data_preprocessor=dict(
            type='ImgDataPreprocessor', mean=[128.] * 3, std=[64.] * 3))
    wrapper = build_optim_wrapper(
        model,
        dict(
            optimizer=dict(type='mmkd.Lamb', lr=1e-2, weight_decay=0.05),
            paramwise_cfg=dict(norm_decay_mult=0.0)))
    assert isinstance(wrapper.optimizer, timm.optim.Lamb)
    decays = {g['weight_decay'] for g in wrapper.optimizer.param_groups}
    assert decays == {0.0, 0.05}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = dict(
        inputs=[torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
                for _ in range(2)],
        data_samples=samples([1, 2], SOFT))
    log_vars = model.train_step(data, wrapper)
    assert 'loss_cls' in log_vars and torch.isfinite(log_vars['loss'])
    changed = [k for k, v in model.state_dict().items()
               if not torch.equal(v, before[k])]
    assert 'model.head.weight' in changed
    # the registered class is timm's own
    assert OPTIMIZERS.get('mmkd.Lamb') is timm.optim.Lamb
