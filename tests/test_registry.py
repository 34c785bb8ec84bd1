"""mmkd plugs into mmengine's registry tree and loads via custom_imports."""
import subprocess
import sys

from helpers import ROOT


def test_registries_are_children_of_mmengine():
    from mmengine.registry import DATASETS as ROOT_DATASETS
    from mmengine.registry import MODELS as ROOT_MODELS

    from mmkd.registry import DATASETS, MODELS, TRANSFORMS
    assert DATASETS.parent is ROOT_DATASETS and DATASETS.scope == 'mmkd'
    assert MODELS.parent is ROOT_MODELS
    assert 'ImageNetFolder' in DATASETS.module_dict
    assert 'PackClsInputs' in TRANSFORMS.module_dict


def _run(code: str) -> subprocess.CompletedProcess:
    # a fresh interpreter, so nothing imported mmkd beforehand
    return subprocess.run([sys.executable, '-c', code],
                          cwd=ROOT,
                          capture_output=True,
                          text=True,
                          timeout=300)


def test_custom_imports_register_mmkd_in_mmdet_config(tmp_path):
    cfg_file = tmp_path / 'det_cfg.py'
    cfg_file.write_text(
        "_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'\n"
        "custom_imports = dict(imports=['mmkd'], allow_failed_imports=False)\n")
    code = f"""
import sys
from mmengine.config import Config
from mmengine.registry import init_default_scope
assert 'mmkd' not in sys.modules
cfg = Config.fromfile({str(cfg_file)!r})
assert 'mmkd' in sys.modules
init_default_scope(cfg.default_scope)
from mmdet.registry import DATASETS
cls = DATASETS.get('mmkd.ImageNetFolder')
from mmkd.datasets import ImageNetFolder
assert cls is ImageNetFolder, cls
print('OK', cfg.default_scope)
"""
    res = _run(code)
    assert res.returncode == 0, res.stderr
    assert 'OK mmdet' in res.stdout


def test_mmkd_type_resolves_from_mmseg_scope():
    code = """
import mmkd
from mmengine.registry import init_default_scope
init_default_scope('mmseg')
from mmseg.registry import TRANSFORMS
t = TRANSFORMS.build(dict(type='mmkd.PackClsInputs'))
print('OK', type(t).__module__)
"""
    res = _run(code)
    assert res.returncode == 0, res.stderr
    assert 'OK mmkd.datasets.transforms' in res.stdout


def test_mmdet_type_resolves_from_mmkd_scope():
    code = """
import mmkd
from mmengine.registry import init_default_scope
init_default_scope('mmkd')
from mmkd.registry import MODELS
m = MODELS.build(dict(type='mmdet.FPN', in_channels=[8, 16], out_channels=8,
                      num_outs=2))
print('OK', type(m).__name__)
"""
    res = _run(code)
    assert res.returncode == 0, res.stderr
    assert 'OK FPN' in res.stdout
