"""ClassificationDistiller: mixed batch to the teacher, KD + deep supervision,
heads out of the export, incompatibilities refused."""
import pytest
import torch
from mmengine.registry import DefaultScope
from mmengine.structures import BaseDataElement

from helpers.cls_models import tiny_classifier
from mmkd.engine.hooks.student_checkpoint_hook import student_state
from mmkd.registry import MODELS


def build(student=None, teacher=None, **kwargs):
    cfg = dict(
        type='ClassificationDistiller',
        student=student or tiny_classifier(
            width=4, mixup_alpha=0.8, cutmix_alpha=1.0),
        teacher=teacher or tiny_classifier(width=8),
        **kwargs)
    with DefaultScope.overwrite_default_scope('mmkd'):
        return MODELS.build(cfg)


def batch(n=4, size=32, num_classes=6):
    torch.manual_seed(0)
    return dict(
        inputs=[torch.randint(0, 256, (3, size, size), dtype=torch.uint8)
                for _ in range(n)],
        data_samples=[
            BaseDataElement(gt_label=torch.tensor([i % num_classes]))
            for i in range(n)
        ])


def test_teacher_sees_the_same_mixed_batch():
    teacher_cfg = tiny_classifier(width=8, mean=(127.5, ) * 3,
                                  std=(127.5, ) * 3)  # BEiT-style
    model = build(teacher=teacher_cfg, teacher_input_size=48,
                  teacher_precision='fp32')
    seen = []
    model.teacher.model.register_forward_hook(
        lambda m, args, out: seen.append(args[0].detach().clone()))
    data = model.data_preprocessor(batch(), training=True)
    scores = torch.stack([d.gt_score for d in data['data_samples']])
    assert torch.allclose(scores.sum(1), torch.ones(4))
    assert (scores.max(1).values < 1).any()  # mixed targets
    losses = model(**data, mode='loss')
    assert set(losses) == {'loss_cls', 'loss_kd'}
    # the student-normalised mixed batch, re-normalised with mean/std 127.5
    # and resized to the teacher's 48 px
    pixels = data['inputs'] * torch.tensor([58.395, 57.12, 57.375]).view(
        1, 3, 1, 1) + torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    expected = torch.nn.functional.interpolate(
        (pixels - 127.5) / 127.5, size=(48, 48), mode='bicubic',
        align_corners=False)
    assert len(seen) == 1 and seen[0].shape == (4, 3, 48, 48)
    assert torch.allclose(seen[0], expected, atol=1e-4)


@pytest.mark.parametrize('kind,stages', [('resnet', [1, 2, 3]),
                                         ('vit', [1, 2])])
def test_deep_supervision_heads_train_and_stay_out_of_export(kind, stages):
    student = tiny_classifier(kind, width=4)
    model = build(student=student, teacher=tiny_classifier(width=8),
                  deep_supervision=dict(stages=stages, gt_weight=0.5))
    model.train()
    data = model.data_preprocessor(batch(), training=True)
    losses = model(**data, mode='loss')
    for i in range(len(stages)):
        assert f'ds{i}.loss_kd' in losses and f'ds{i}.loss_cls' in losses
    sum(losses.values()).backward()
    for name, p in model.ds_heads.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in model.teacher.parameters())
    assert model.teacher.training is False
    # the export: exactly the timm model's own keys
    state = model.student.plain_state_dict(student_state(model.state_dict()))
    assert set(state) == set(model.student.model.state_dict())
    assert not any('ds_heads' in k or 'teacher' in k for k in state)


def test_cnn_head_depth_follows_the_stride_gap():
    model = build(deep_supervision=dict(stages=[1, 3]))
    # layer1 at stride 4 -> 3 blocks to stride 32; layer3 -> 1 block
    assert [len(h.blocks) for h in model.ds_heads] == [3, 1]


def test_kd_loss_choice_and_weights():
    model = build(distill=dict(logits=dict(type='mmkd.DKDLoss')),
                  ori_weight=0.0)
    data = model.data_preprocessor(batch(), training=True)
    losses = model(**data, mode='loss')
    assert losses['loss_cls'] == 0 and losses['loss_kd'] > 0
    model.distill_scale = 0.5
    half = model(**data, mode='loss')['loss_kd']
    assert torch.allclose(half, losses['loss_kd'] * 0.5)


def test_predict_is_the_students():
    model = build().eval()
    data = model.data_preprocessor(batch(), training=False)
    out = model(**data, mode='predict')
    assert out[0].pred_score.shape == (6, )
    logits = model.student(data['inputs'], mode='tensor')
    assert torch.allclose(out[0].pred_score, logits[0].softmax(-1))


def test_incompatible_models_are_refused():
    with pytest.raises(ValueError, match='student 6, teacher 10'):
        build(teacher=tiny_classifier(width=8, num_classes=10))
    with pytest.raises(ValueError, match=r'valid: 0\.\.4 \(act1, layer1'):
        build(deep_supervision=dict(stages=[5]))
    with pytest.raises(KeyError, match='unknown terms'):
        build(distill=dict(features=dict(type='mmkd.KDLoss')))


def test_teacher_checkpoint_in_plain_timm_keys(tmp_path):
    teacher_cfg = tiny_classifier(width=8)
    with DefaultScope.overwrite_default_scope('mmkd'):
        trained = MODELS.build(teacher_cfg)
    torch.nn.init.normal_(trained.model.fc.weight)
    torch.save(trained.model.state_dict(), tmp_path / 'timm.pth')  # no prefix
    model = build(teacher=teacher_cfg, teacher_ckpt=str(tmp_path / 'timm.pth'),
                  teacher_precision='fp32')
    assert torch.equal(model.teacher.model.fc.weight, trained.model.fc.weight)
    torch.save({'fc.weight': trained.model.fc.weight}, tmp_path / 'part.pth')
    with pytest.raises(ValueError, match='part.pth.*missing keys'):
        build(teacher=teacher_cfg, teacher_ckpt=str(tmp_path / 'part.pth'))
