"""The checkpoint policy: runner checkpoints resume; other objects refused."""
import collections

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint

import mmkd  # noqa: F401
from mmkd.utils import (CorruptCheckpointError, UnsafeCheckpointError,
                        check_checkpoint_file, load_checkpoint)


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


def _random_bytes(path, n=5000):
    """``n`` random bytes (not a zip archive, not a pickle)."""
    data = torch.randint(0, 256, (n, ), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(0))
    data[:2] = torch.tensor([0xd8, 0x62])  # neither "PK" nor a pickle header
    path.write_bytes(data.numpy().tobytes())
    return path


def _cut(path, obj, **save_kwargs):
    """``obj`` saved to ``path``, then cut in half."""
    torch.save(obj, path, **save_kwargs)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def _assert_corrupt(path):
    """mmkd's and mmengine's loaders: "corrupt or truncated", the path, no
    advice to trust the file."""
    for load in (load_checkpoint,
                 lambda p: _load_checkpoint(p, map_location='cpu')):
        with pytest.raises(CorruptCheckpointError) as err:
            load(str(path))
        msg = str(err.value)
        assert f'checkpoint "{path}" is corrupt or truncated' in msg
        assert not isinstance(err.value, UnsafeCheckpointError)
        assert 'weights_only' not in msg and 'MMKD_TRUST' not in msg, msg
        assert isinstance(err.value, RuntimeError)  # as before


def test_random_bytes_are_corrupt_not_unsafe(tmp_path, monkeypatch):
    monkeypatch.delenv('MMKD_TRUST_CHECKPOINTS', raising=False)
    path = _random_bytes(tmp_path / 'trunc.pth')
    _assert_corrupt(path)
    with pytest.raises(CorruptCheckpointError, match='5000 bytes'):
        check_checkpoint_file(path)


@pytest.mark.parametrize('zip_format', [True, False])
def test_truncated_checkpoint_is_corrupt(tmp_path, zip_format):
    """A real checkpoint cut in half: torch's zip format (caught by the
    structure check) and the legacy format (caught when torch reads it)."""
    path = _cut(tmp_path / 'cut.pth',
                dict(state_dict=dict(w=torch.randn(1000))),
                _use_new_zipfile_serialization=zip_format)
    _assert_corrupt(path)
    if zip_format:
        with pytest.raises(CorruptCheckpointError,
                           match='not a readable zip archive'):
            check_checkpoint_file(path)
    else:  # a pickle header: only loading finds the missing bytes
        check_checkpoint_file(path)


def test_zip_record_past_the_end_is_corrupt(tmp_path):
    """A zip archive whose central directory declares a record longer than
    the file holds."""
    import struct
    import zipfile
    path = tmp_path / 'hollow.pth'
    torch.save(dict(w=torch.randn(1000)), path)
    with zipfile.ZipFile(path) as archive:
        record = max(archive.infolist(), key=lambda r: r.compress_size)
    data = bytearray(path.read_bytes())
    entry = data.index(b'PK\x01\x02')  # the first central directory entry
    while data[entry + 46:entry + 46 + len(record.filename)] != \
            record.filename.encode():
        entry = data.index(b'PK\x01\x02', entry + 4)
    claimed = record.compress_size + 10**6
    data[entry + 20:entry + 28] = struct.pack('<II', claimed, claimed)
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpointError,
                       match=f'record "{record.filename}" ends at byte'):
        check_checkpoint_file(path)
    _assert_corrupt(path)


def test_intact_legacy_file_with_foreign_object_is_unsafe(tmp_path,
                                                          monkeypatch):
    """The weights_only advice stays for intact files (legacy format too,
    where the names come from torch's message)."""
    monkeypatch.delenv('MMKD_TRUST_CHECKPOINTS', raising=False)
    path = tmp_path / 'legacy_evil.pth'
    torch.save(dict(extra=NotAllowed()), path,
               _use_new_zipfile_serialization=False)
    check_checkpoint_file(path)
    with pytest.raises(UnsafeCheckpointError, match='NotAllowed') as err:
        load_checkpoint(path)
    assert 'MMKD_TRUST_CHECKPOINTS=1' in str(err.value)


def test_safetensors_cut_short_is_corrupt(tmp_path):
    from safetensors.torch import save_file
    path = tmp_path / 'model.safetensors'
    save_file(dict(w=torch.randn(1000)), str(path))
    assert load_checkpoint(path)['w'].shape == (1000, )
    data = path.read_bytes()
    path.write_bytes(data[:len(data) - 100])
    with pytest.raises(CorruptCheckpointError,
                       match=f'the tensors end at byte {len(data)}, the '
                       f'file has {len(data) - 100} bytes'):
        check_checkpoint_file(path)
    _assert_corrupt(path)
