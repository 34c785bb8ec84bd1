"""benchmark_distill.py in a tiny mode: the demo's kd-ds configs, small
inputs, one timed iteration; the JSON must hold every row and figure."""
import glob
import importlib.util
import json
import os.path as osp

import pytest

from helpers import ROOT

ROWS = {'student', 'kd_fp32', 'kd_fast', 'kd_ds', 'ideal', 'teacher_fp32',
        'teacher_fast'}


def _bench():
    path = osp.join(ROOT, 'tools/analysis_tools/benchmark_distill.py')
    spec = importlib.util.spec_from_file_location('benchmark_distill', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _demo_kd_ds(dataset):
    """The demo's KD + deep supervision config for ``dataset``."""
    found = sorted(glob.glob(
        osp.join(ROOT, f'configs/demo/*_kd-ds_demo-{dataset}.py')))
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize('dataset, size, batch', [('coco', 64, 2),
                                                  ('ade', 64, 1),
                                                  ('in1k', 32, 2)])
def test_tiny_interleaved_run_writes_every_row(tmp_path, capsys, dataset,
                                               size, batch):
    out = tmp_path / 'bench.json'
    _bench().main(['--config', _demo_kd_ds(dataset), '--size', str(size), '--batch',
                   str(batch), '--steps', '2', '--warmup', '0', '--json',
                   str(out)])
    res = json.loads(out.read_text())['results'][0]
    # the teacher cache row: dense detection only
    assert set(res['rows']) == ROWS | ({'kd_cache'} if dataset == 'coco'
                                       else set())
    if dataset == 'coco':  # filled before timing, read at every timed step
        stats = res['teacher_cache']
        assert (stats['misses'], stats['hits']) == (batch, 2 * batch)
    assert 'kd_fast-ideal' in res['differences']
    for name, row in res['rows'].items():
        assert len(row['times_ms']) == 2 and row['median_ms'] > 0, name
        assert row['ratio'] > 0 and row['weight_bytes'] > 0, name
    assert res['rows']['student']['ratio'] == 1.0
    w = res['teacher_weight_bytes']
    # bf16 where native halves the teacher's weights; fp32 keeps them
    expected = 0.5 if res['teacher_dtype'] == 'torch.bfloat16' else 1.0
    assert w['ratio'] == pytest.approx(expected, rel=0.01)
    assert any(t['what'].startswith('teacher weights')
               for t in res['targets'])
    printed = capsys.readouterr().out
    assert 'KD + deep supervision' in printed and 'x student' in printed
