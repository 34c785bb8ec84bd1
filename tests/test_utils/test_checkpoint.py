"""The checkpoint policy: runner checkpoints resume; other objects refused."""
import collections

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint

import mmkd  # noqa: F401
from mmkd.utils import UnsafeCheckpointError, load_checkpoint


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.linear(torch.stack(inputs) if isinstance(inputs, list)
                          else inputs)
        if mode == 'loss':
            return dict(loss=((out.squeeze(-1) - torch.stack(labels))**2).mean())
        return out


class ToyDataset(torch.utils.data.Dataset):
    metainfo = dict()

    def __len__(self):
        return 8

    def __getitem__(self, i):
        x = torch.tensor([float(i), 1.0])
        return dict(inputs=x, labels=x.sum())


class NotAllowed:
    """Stands for any object a checkpoint should not smuggle in."""

    def __init__(self):
        self.x = 1


def _runner(work_dir, max_iters, **kwargs):
    torch.manual_seed(0)  # the model is built before the runner seeds
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=2)),
        randomness=dict(seed=0),
        log_level='WARNING',
        **kwargs)


def test_runner_checkpoint_resumes_under_weights_only(tmp_path):
    _runner(tmp_path / 'a', 2).train()
    ckpt = tmp_path / 'a' / 'iter_2.pth'
    # the file holds mmengine's HistoryBuffer (and a getattr reference to its
    # methods): the policy loads it weights_only
    raw = load_checkpoint(ckpt)
    assert 'message_hub' in raw
    resumed = _runner(tmp_path / 'b', 4, resume=True, load_from=str(ckpt))
    resumed.train()
    assert resumed.iter == 4
    full = _runner(tmp_path / 'c', 4)
    full.train()
    for (k, a), b in zip(resumed.model.state_dict().items(),
                         full.model.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)


def test_plain_state_dict_loads(tmp_path):
    path = tmp_path / 'weights.pth'
    sd = collections.OrderedDict(w=torch.ones(2))
    torch.save(dict(state_dict=sd, meta=dict(epoch=1)), path)
    out = load_checkpoint(path)
    assert torch.equal(out['state_dict']['w'], torch.ones(2))


def test_unsafe_object_is_refused_with_clear_message(tmp_path, monkeypatch):
    monkeypatch.delenv('MMKD_TRUST_CHECKPOINTS', raising=False)
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict={}, extra=NotAllowed()), path)
    with pytest.raises(UnsafeCheckpointError) as err:
        load_checkpoint(path)
    msg = str(err.value)
    assert str(path) in msg
    assert 'NotAllowed' in msg
    assert 'MMKD_TRUST_CHECKPOINTS=1' in msg and 'add_safe_globals' in msg
    # mmengine's own loader (runner load_from/resume, init_detector) goes
    # through the same policy
    with pytest.raises(UnsafeCheckpointError):
        _load_checkpoint(str(path), map_location='cpu')


def test_trusted_file_loads_with_env(tmp_path, monkeypatch):
    path = tmp_path / 'trusted.pth'
    torch.save(dict(extra=NotAllowed()), path)
    monkeypatch.setenv('MMKD_TRUST_CHECKPOINTS', '1')
    with pytest.warns(UserWarning, match='MMKD_TRUST_CHECKPOINTS'):
        out = load_checkpoint(path)
    assert out['extra'].x == 1


def test_missing_file_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_checkpoint(tmp_path / 'nope.pth')


def test_truncated_file_names_the_file(tmp_path):
    path = tmp_path / 'cut.pth'
    torch.save(dict(state_dict=dict(w=torch.randn(1000))), path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(RuntimeError, match='truncated or corrupt') as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)
    with pytest.raises(RuntimeError, match='cut.pth'):  # mmengine's loader
        _load_checkpoint(str(path), map_location='cpu')
