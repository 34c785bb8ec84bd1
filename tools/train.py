"""Train a model (mmdet / mmseg / mmkd config) with mmengine's runner.

Same command line as MMDetection 3.3's ``tools/train.py``.
"""
import argparse

import mmkd  # noqa: F401  (registers mmkd, installs the checkpoint policy)
from mmkd.utils import check_file, train_splits
from mmkd.utils.cli import add_common_args, load_cfg, parse_args, prepare, run


def get_args():
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='enable automatic-mixed-precision training (needs a GPU)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='enable automatically scaling LR by the total batch size')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='If specify checkpoint path, resume from it, while if not '
        'specify, try to auto resume from the latest checkpoint '
        'in the work directory.')
    add_common_args(parser)
    return parse_args(parser)


def build_cfg(args):
    """Load the config and apply the command line to it."""
    cfg = load_cfg(args)
    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise SystemExit('--amp needs a CUDA GPU (mmengine\'s '
                             'AmpOptimWrapper); run without --amp on CPU')
        optim_wrapper = cfg.optim_wrapper.type
        if optim_wrapper == 'AmpOptimWrapper':
            print('AMP training is already enabled in your config.')
        else:
            assert optim_wrapper == 'OptimWrapper', (
                '`--amp` is only supported when the optimizer wrapper type is '
                f'`OptimWrapper` but got {optim_wrapper}.')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        if ('auto_scale_lr' in cfg and 'enable' in cfg.auto_scale_lr
                and 'base_batch_size' in cfg.auto_scale_lr):
            cfg.auto_scale_lr.enable = True
        else:
            raise RuntimeError('Can not find "auto_scale_lr" or '
                               '"auto_scale_lr.enable" or '
                               '"auto_scale_lr.base_batch_size" in your'
                               f' configuration file {args.config}.')

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        check_file(args.resume, '--resume')
        cfg.resume = True
        cfg.load_from = args.resume

    # what training reads (train, and val if it validates) is checked
    # before the runner creates the work dir; the test split is test.py's
    prepare(cfg, args.launcher, splits=train_splits(cfg))
    return cfg


def main():
    run(build_cfg, get_args(), 'train')


if __name__ == '__main__':
    main()
