"""Checkpoints by URL: downloaded once into torch hub's cache (atomically),
then loaded under the weights_only policy; errors name the URL.

A real HTTP server is started on 127.0.0.1 (port 0) for each test."""
import io
import os
import threading
import time
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
    path in ``files['truncate']`` announces its full size but sends half;
    each answer waits ``files['delay']`` seconds."""
    files, requests = {'truncate': set(), 'delay': 0}, []

    class Handler(BaseHTTPRequestHandler):

        def do_GET(self):  # noqa: N802 (http.server's name)
            requests.append(self.path)
            time.sleep(files['delay'])
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


def _spawn(scenarios: dict, out_dir, timeout: float = 90) -> list:
    """Run ``helpers.dist_download.worker`` on 2 gloo ranks; their results."""
    import json

    import torch.multiprocessing as mp

    from helpers import free_port
    from helpers.dist_download import worker
    ctx = mp.start_processes(worker, args=(2, free_port(), scenarios,
                                           str(out_dir)),
                             nprocs=2, join=False, start_method='spawn')
    deadline = time.monotonic() + timeout
    try:
        while not ctx.join(timeout=1):
            assert time.monotonic() < deadline, 'the ranks hang'
    finally:
        for proc in ctx.processes:
            if proc.is_alive():
                proc.kill()
    return [json.loads((out_dir / f'rank{r}.json').read_text())
            for r in (0, 1)]


def test_one_download_per_node_under_torch_distributed(server, tmp_path):
    """2 gloo ranks on one node: local rank 0 downloads (one GET, its
    progress bar), the other rank waits and reads the cache — through
    mmkd's loader and mmengine's ``CheckpointLoader`` alike. A failed
    download stops both ranks with the same error; two "nodes" (local rank
    0 each, own caches) download once each."""
    base, files, requests = server
    files['delay'] = 0.3  # ranks that did not wait would all ask meanwhile
    sd = dict(w=torch.arange(4.))
    for name in ('a', 'b', 'd'):
        files[f'/zoo/{name}_20200101-abcd.pth'] = _bytes(dict(state_dict=sd))
    home = str(tmp_path / 'home_{}')
    scenarios = dict(
        mmkd=dict(kind='mmkd', url=f'{base}/zoo/a_20200101-abcd.pth',
                  torch_home=home.format('a')),
        mmengine=dict(kind='mmengine', url=f'{base}/zoo/b_20200101-abcd.pth',
                      torch_home=home.format('b')),
        missing=dict(kind='mmkd', url=f'{base}/zoo/missing.pth',
                     torch_home=home.format('c')),
        two_nodes=dict(kind='mmkd', url=f'{base}/zoo/d_20200101-abcd.pth',
                       torch_home=home.format('d{rank}'), local_rank=0))
    ranks = _spawn(scenarios, tmp_path)

    counts = {p: requests.count(p) for p in set(requests)}
    assert counts == {'/zoo/a_20200101-abcd.pth': 1,
                      '/zoo/b_20200101-abcd.pth': 1,
                      '/zoo/missing.pth': 1,
                      '/zoo/d_20200101-abcd.pth': 2}, counts
    for key in ('mmkd', 'mmengine', 'two_nodes'):
        for r in ranks:
            assert r[key]['ok'], (key, r[key])
            assert r[key]['w'] == [0., 1., 2., 3.]
    for key, name in (('mmkd', 'a_2020'), ('mmengine', 'b_2020')):
        # one progress bar: on the rank that downloads
        assert name in ranks[0][key]['stderr']
        assert ranks[1][key]['stderr'] == '', ranks[1][key]['stderr']
    assert all(name in r['two_nodes']['stderr'] for r in ranks
               for name in ['d_2020'])
    # the failure reaches both ranks as one error naming the URL and status
    failed = [r['missing'] for r in ranks]
    assert [f['type'] for f in failed] == ['OSError', 'OSError']
    assert failed[0]['msg'] == failed[1]['msg']
    assert f'{base}/zoo/missing.pth' in failed[0]['msg']
    assert '404' in failed[0]['msg'] and 'rank 0' in failed[0]['msg']
    assert not os.listdir(tmp_path / 'home_c' / 'hub' / 'checkpoints')
