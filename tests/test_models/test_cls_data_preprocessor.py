"""mmkd.ClsDataPreprocessor: normalisation, timm mixup/cutmix, soft targets."""
import numpy as np
import pytest
import torch
from mmengine.structures import BaseDataElement

from mmkd.models import ClsDataPreprocessor
from mmkd.registry import MODELS

C = 5
MEAN, STD = [120., 110., 100.], [50., 60., 70.]


def _batch(labels, size: int = 16, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    inputs = [
        torch.randint(0, 256, (3, size, size), generator=g,
                      dtype=torch.uint8) for _ in labels
    ]
    samples = [
        BaseDataElement(gt_label=torch.tensor([y]), metainfo=dict(idx=i))
        for i, y in enumerate(labels)
    ]
    return dict(inputs=inputs, data_samples=samples)


def _pre(**kwargs) -> ClsDataPreprocessor:
    return MODELS.build(
        dict(
            type='mmkd.ClsDataPreprocessor',
            num_classes=C,
            mean=MEAN,
            std=STD,
            bgr_to_rgb=True,
            **kwargs))


def _normalised(batch: dict) -> torch.Tensor:
    """The unmixed batch computed by hand: BGR->RGB, (x - mean) / std."""
    x = torch.stack(batch['inputs'])[:, [2, 1, 0]].float()
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(
        STD).view(1, 3, 1, 1)


def _scores(out: dict) -> torch.Tensor:
    return torch.stack([s.gt_score for s in out['data_samples']])


LABELS = [0, 1, 2, 3, 4, 1]  # sample i and 5 - i have different labels


def test_eval_mode_normalises_and_never_mixes():
    pre = _pre(mixup_alpha=1.0, cutmix_alpha=1.0, label_smoothing=0.1)
    batch = _batch(LABELS)
    out = pre(batch, training=False)
    torch.testing.assert_close(out['inputs'], _normalised(batch))
    for s, y in zip(out['data_samples'], LABELS):
        assert 'gt_score' not in s and int(s.gt_label) == y
    # odd batches are fine at test time
    assert pre(_batch([0, 1, 2]), training=False)['inputs'].shape[0] == 3


@pytest.mark.parametrize('smoothing', [0.0, 0.1])
def test_training_without_mixup_gives_smoothed_one_hot(smoothing):
    pre = _pre(label_smoothing=smoothing)
    batch = _batch([3, 0, 4])  # odd: no mixup, no constraint
    out = pre(batch, training=True)
    torch.testing.assert_close(out['inputs'], _normalised(batch))
    off = smoothing / C
    expected = torch.full((3, C), off)
    expected[[0, 1, 2], [3, 0, 4]] = 1 - smoothing + off
    torch.testing.assert_close(_scores(out), expected)
    if smoothing:  # 0.1: 0.92 on the label, 0.02 elsewhere
        assert abs(float(expected[0, 3]) - 0.92) < 1e-6
    assert [int(s.gt_label) for s in out['data_samples']] == [3, 0, 4]


def test_batch_mixup_is_timms_convex_combination():
    alpha, smoothing = 0.8, 0.1
    pre = _pre(mixup_alpha=alpha, label_smoothing=smoothing)
    batch = _batch(LABELS)
    x = _normalised(batch)
    np.random.seed(3)
    out = pre(batch, training=True)
    # replay timm's draws: prob check, then lam ~ Beta(alpha, alpha)
    np.random.seed(3)
    assert np.random.rand() < 1.0
    lam = float(np.random.beta(alpha, alpha))
    assert 0.02 < lam < 0.98  # a real mix for this seed
    torch.testing.assert_close(out['inputs'], lam * x + (1 - lam) * x.flip(0))
    assert not torch.allclose(out['inputs'], x)
    off = smoothing / C
    y1 = torch.full((6, C), off)
    y1[range(6), LABELS] = 1 - smoothing + off
    expected = lam * y1 + (1 - lam) * y1.flip(0)
    scores = _scores(out)
    torch.testing.assert_close(scores, expected)
    torch.testing.assert_close(scores.sum(1), torch.ones(6))
    assert [int(s.gt_label) for s in out['data_samples']] == LABELS


def test_batch_cutmix_pastes_the_flipped_batch_and_mixes_targets():
    pre = _pre(cutmix_alpha=1.0)
    batch = _batch(LABELS, size=32)
    x = _normalised(batch)
    np.random.seed(0)
    out = pre(batch, training=True)
    mixed = out['inputs']
    from_self = (mixed == x).all(1)  # per pixel
    from_flip = (mixed == x.flip(0)).all(1)
    assert (from_self | from_flip).all()
    assert not from_self.all()  # a box was pasted
    # the target weight of the own label is the area fraction kept
    lam = from_self[0].float().mean()
    scores = _scores(out)
    torch.testing.assert_close(scores[0, LABELS[0]], lam)
    torch.testing.assert_close(scores[0, LABELS[5]], 1 - lam)
    torch.testing.assert_close(scores.sum(1), torch.ones(6))


@pytest.mark.parametrize('mode', ['pair', 'elem'])
def test_pair_and_elem_modes_give_valid_targets(mode):
    pre = _pre(mixup_alpha=1.0, cutmix_alpha=1.0, mode=mode,
               label_smoothing=0.1)
    batch = _batch(LABELS)
    np.random.seed(1)
    out = pre(batch, training=True)
    scores = _scores(out)
    assert scores.shape == (6, C) and (scores > 0).all()
    torch.testing.assert_close(scores.sum(1), torch.ones(6))
    assert not torch.allclose(out['inputs'], _normalised(batch))


def test_errors():
    pre = _pre(mixup_alpha=0.8)
    with pytest.raises(ValueError, match='even batch size .* got batch '
                       'size 3'):
        pre(_batch([0, 1, 2]), training=True)
    with pytest.raises(ValueError, match='gt_label 7 is outside '
                       'num_classes 5'):
        _pre()(_batch([0, 7]), training=True)
    with pytest.raises(ValueError, match='has no gt_label'):
        _pre()(dict(inputs=[torch.zeros(3, 4, 4, dtype=torch.uint8)],
                    data_samples=[BaseDataElement()]), training=True)
    with pytest.raises(ValueError, match="mode must be .* got 'half'"):
        _pre(mode='half')
    with pytest.raises(ValueError, match='num_classes must be a positive'):
        ClsDataPreprocessor(num_classes=0)
