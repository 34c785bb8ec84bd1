"""Checkpoints by URL: downloaded once into torch hub's cache (atomically),
then loaded under the weights_only policy; errors name the URL.

A real HTTP server is started on 127.0.0.1 (port 0) for each test."""
import io
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
import torch.nn as nn
from mmengine.runner.checkpoint import _load_checkpoint

import mmkd  # noqa: F401  (installs the checkpoint policy)
from mmkd.utils import (UnsafeCheckpointError, check_checkpoints,
                        load_checkpoint, load_weights)
from mmkd.utils.checkpoint import cache_name


class NotAllowed:
    """Stands for any object a checkpoint should not smuggle in."""


def _bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@pytest.fixture
def server():
    """``(base_url, files, requests)``: serves ``files[path] = bytes``; a
    path in ``files['truncate']`` announces its full size but sends half."""
    files, requests = {'truncate': set()}, []

    class Handler(BaseHTTPRequestHandler):

        def do_GET(self):  # noqa: N802 (http.server's name)
            requests.append(self.path)
            body = files.get(self.path)
            if body is None:
                self.send_error(404, 'Not Found')
                return
            self.send_response(200)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            if self.path in files['truncate']:
                body = body[:len(body) // 2]
                self.close_connection = True
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}', files, requests
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> str:
    """torch hub's checkpoint cache, in a temporary dir."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    path = os.path.join(torch.hub.get_dir(), 'checkpoints')
    assert path.startswith(str(tmp_path)), 'torch.hub dir set elsewhere'
    return path


def test_url_downloads_once_then_loads_from_cache(server, cache):
    base, files, requests = server
    torch.manual_seed(0)
    source = nn.Linear(3, 2)
    files['/zoo/linear_20200101-abcd.pth'] = _bytes(
        dict(state_dict=source.state_dict(), meta=dict(epoch=12)))
    url = base + '/zoo/linear_20200101-abcd.pth'

    model = nn.Linear(3, 2)
    meta = load_weights(model, url, 'teacher')
    assert meta == dict(epoch=12)
    assert torch.equal(model.weight, source.weight)
    assert os.listdir(cache) == ['linear_20200101-abcd.pth']
    assert requests == ['/zoo/linear_20200101-abcd.pth']

    # the second load (here through mmengine's loader, as the runner's
    # load_from uses it) reads the cache without a request
    ckpt = _load_checkpoint(url, map_location='cpu')
    assert torch.equal(ckpt['state_dict']['bias'], source.bias)
    assert len(requests) == 1


def test_url_checkpoint_is_under_the_weights_only_policy(server, cache,
                                                         monkeypatch):
    monkeypatch.delenv('MMKD_TRUST_CHECKPOINTS', raising=False)
    base, files, _ = server
    files['/evil.pth'] = _bytes(dict(state_dict={}, extra=NotAllowed()))
    for load in (load_checkpoint, _load_checkpoint):  # mmkd's, mmengine's
        with pytest.raises(UnsafeCheckpointError, match='NotAllowed'):
            load(base + '/evil.pth')


def test_404_names_url_and_status(server, cache):
    base, _, requests = server
    url = base + '/zoo/missing.pth'
    with pytest.raises(OSError) as err:
        load_checkpoint(url)
    assert url in str(err.value) and '404' in str(err.value)
    assert requests == ['/zoo/missing.pth']
    assert not os.path.isdir(cache) or os.listdir(cache) == []


def test_truncated_download_leaves_nothing_cached(server, cache):
    base, files, requests = server
    files['/big.pth'] = _bytes(dict(state_dict=dict(w=torch.randn(5000))))
    files['truncate'].add('/big.pth')
    url = base + '/big.pth'
    with pytest.raises(OSError, match='big.pth') as err:
        load_checkpoint(url)
    assert url in str(err.value)
    assert os.listdir(cache) == []  # neither the file nor a partial one
    # once the server sends it whole, the next load downloads it again
    files['truncate'].clear()
    assert load_checkpoint(url)['state_dict']['w'].shape == (5000, )
    assert len(requests) == 2 and os.listdir(cache) == [cache_name(url)]


def test_same_file_name_from_two_repositories(server, cache):
    """Hugging Face repositories all call their weights
    ``pytorch_model.bin`` / ``model.safetensors``: each URL gets its own
    cache file; safetensors files load too."""
    from safetensors.torch import save
    base, files, requests = server
    a, b = torch.zeros(3), torch.ones(3)
    files['/timm/a/resolve/main/pytorch_model.bin'] = _bytes(dict(w=a))
    files['/timm/b/resolve/main/pytorch_model.bin'] = _bytes(dict(w=b))
    files['/timm/b/resolve/main/model.safetensors'] = save(dict(w=b))
    for repo, value in (('a', a), ('b', b), ('a', a)):
        url = f'{base}/timm/{repo}/resolve/main/pytorch_model.bin'
        assert torch.equal(load_checkpoint(url)['w'], value)
    url = f'{base}/timm/b/resolve/main/model.safetensors'
    assert torch.equal(load_checkpoint(url)['w'], b)
    assert len(requests) == 3 and len(os.listdir(cache)) == 3


def test_preflight_accepts_urls_and_names_missing_files(tmp_path):
    from mmengine.config import Config
    cfg = Config(dict(model=dict(teacher_ckpt='https://127.0.0.1:9/t.pth',
                                 student_ckpt='http://127.0.0.1:9/s.pth'),
                      load_from='https://127.0.0.1:9/run.pth'))
    check_checkpoints(cfg)  # nothing is requested
    missing = str(tmp_path / 'student.pth')
    cfg.model.student_ckpt = missing
    with pytest.raises(FileNotFoundError,
                       match=f'model.student_ckpt: file "{missing}"'):
        check_checkpoints(cfg)
