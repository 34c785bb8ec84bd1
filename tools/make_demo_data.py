"""Generate the synthetic demo datasets (COCO, ADE20K and ImageNet layouts).

Usage (from the repository root)::

    python tools/make_demo_data.py [--out data/demo] [--seed 0] [--scale 1.0]
                                   [--only coco ade imagenet]

Existing datasets generated with the same parameters are reused.
"""
import argparse
import os.path as osp
import sys

# Make ``import mmkd`` work without installing the package: put the repository
# root (the parent of tools/) first on sys.path.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmkd.datasets.demo_data import make_all_demo_data  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/demo',
                        help='parent folder of the datasets')
    parser.add_argument('--seed', type=int, default=0, help='base seed')
    parser.add_argument('--scale', type=float, default=1.0,
                        help='multiplier for every image count')
    parser.add_argument('--only', nargs='+',
                        choices=('coco', 'ade', 'imagenet'),
                        help='generate only these datasets')
    args = parser.parse_args()
    paths = make_all_demo_data(args.out, seed=args.seed, scale=args.scale,
                               only=args.only)
    for name, path in paths.items():
        print(f'{name}: {osp.abspath(path)}')


if __name__ == '__main__':
    main()
