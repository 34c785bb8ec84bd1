"""Shared fixtures (helpers live in ``tests/helpers``)."""
import os

import pytest

# keep test processes from spinning on each other's cores
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')


@pytest.fixture(scope='session')
def demo_root(tmp_path_factory) -> str:
    """A small (5 %) version of all three demo data sets, made once."""
    from mmkd.datasets.demo_data import make_all_demo_data
    root = str(tmp_path_factory.mktemp('demo'))
    make_all_demo_data(root, seed=0, scale=0.05)
    return root
