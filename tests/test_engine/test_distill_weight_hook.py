"""Distillation-weight schedules: warm-up, decay, stop."""
from types import SimpleNamespace

import pytest
import torch.nn as nn
from mmengine.logging import MessageHub

from mmkd.engine.hooks import DistillWeightHook, distill_scale


def test_schedule_values():
    assert distill_scale(0, warmup=4) == pytest.approx(0.25)
    assert distill_scale(3, warmup=4) == pytest.approx(1.0)
    assert distill_scale(10, warmup=4) == 1.0
    # linear decay from the end of warm-up to `total`
    assert distill_scale(4, warmup=4, decay='linear', total=14) == 1.0
    assert distill_scale(9, warmup=4, decay='linear', total=14) == \
        pytest.approx(0.5)
    assert distill_scale(9, decay='cosine', total=18) == pytest.approx(0.5)
    assert distill_scale(18, decay='cosine', total=18,
                         min_scale=0.2) == pytest.approx(0.2)
    assert distill_scale(7, stop=7) == 0.0 and distill_scale(6, stop=7) == 1.0


def test_hook_sets_the_scale_on_the_distiller():
    model = nn.Linear(1, 1)
    model.distill_scale = 1.0
    runner = SimpleNamespace(
        model=model, iter=1, epoch=0, max_iters=10, max_epochs=1,
        message_hub=MessageHub.get_instance('test_distill_weight_hook'))
    hook = DistillWeightHook(warmup=4, stop=8)
    hook.before_train_iter(runner, 0)
    assert model.distill_scale == pytest.approx(0.5)
    runner.iter = 8
    hook.before_train_iter(runner, 0)
    assert model.distill_scale == 0.0
    assert runner.message_hub.get_scalar(
        'train/distill_scale').current() == 0.0


def test_hook_refuses_plain_models_and_bad_decay():
    runner = SimpleNamespace(model=nn.Linear(1, 1), iter=0, max_iters=1)
    with pytest.raises(TypeError, match='mmkd distiller'):
        DistillWeightHook().before_train_iter(runner, 0)
    with pytest.raises(ValueError, match="'linear' or 'cosine'"):
        DistillWeightHook(decay='step')
