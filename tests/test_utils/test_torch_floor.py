"""The torch floor: declared in setup.py, checked first at ``import mmkd``."""
import os
import re
import subprocess
import sys

import pytest
import torch

from helpers import ROOT
from mmkd.utils import compat


def test_old_torch_is_refused_naming_both_versions(monkeypatch):
    monkeypatch.setattr(torch, '__version__', '2.1.0')
    with pytest.raises(ImportError) as err:
        compat.check_torch_version()
    msg = str(err.value)
    assert 'found torch 2.1.0' in msg and 'needs torch >= 2.5' in msg
    assert 'pip install "torch>=2.5"' in msg  # what to do
    assert 'get_unsafe_globals_in_checkpoint' in msg  # why


@pytest.mark.parametrize('version, ok', [
    ('1.13.1', False), ('2.1.2+cu121', False), ('2.4.1', False),
    ('2.5.0', True), ('2.5.0a0+git1234', True), ('2.6.0+cpu', True),
    ('2.14.1', True), ('3.0.0', True)])
def test_versions_compare_as_numbers(version, ok):
    """2.14 is newer than 2.5 (a string comparison says otherwise)."""
    if ok:
        compat.check_torch_version(version)
    else:
        with pytest.raises(ImportError,
                           match=re.escape(f'found torch {version}')):
            compat.check_torch_version(version)


def test_unreadable_version_is_named():
    with pytest.raises(ValueError, match='"nightly"'):
        compat.check_torch_version('nightly')


def test_import_mmkd_checks_before_importing_anything_else():
    """An old torch stops ``import mmkd`` with the floor's message, before
    mmengine or any mmkd module that needs the newer torch is imported."""
    code = ('import sys, torch\n'
            'torch.__version__ = "2.1.0"\n'
            'try:\n'
            '    import mmkd\n'
            'except ImportError as err:\n'
            '    print("ERROR", err)\n'
            'print("LOADED", sorted(m for m in sys.modules\n'
            '      if m.startswith(("mmengine", "mmkd.utils.checkpoint",\n'
            '                       "mmkd.datasets"))))\n')
    res = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=ROOT),
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert 'ERROR mmkd needs torch >= 2.5, found torch 2.1.0' in res.stdout
    assert 'LOADED []' in res.stdout


def test_setup_py_declares_the_floor(monkeypatch):
    """pip reads install_requires: the floor is there; the exact torch pins
    of requirements/runtime.txt (the set-up script's) are not."""
    import setuptools  # noqa: F401  (first: it provides distutils)
    from distutils.core import run_setup
    monkeypatch.chdir(ROOT)
    requires = run_setup('setup.py', stop_after='init').install_requires
    assert compat.TORCH_REQUIREMENT == 'torch>=2.5'
    assert 'torch>=2.5' in requires
    assert not [r for r in requires if r.startswith(('torch=', 'torchvision'))]
    with open(os.path.join(ROOT, 'requirements/runtime.txt')) as f:
        assert 'torch==' in f.read()  # kept for tools/setup_env.sh
