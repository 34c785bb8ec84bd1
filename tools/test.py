"""Evaluate a checkpoint (mmdet / mmseg / mmkd config) with mmengine's runner.

Same command line as MMDetection 3.3's ``tools/test.py``.
"""
import argparse

from mmengine.config import ConfigDict

import mmkd  # noqa: F401  (registers mmkd, installs the checkpoint policy)
from mmkd.utils import check_file
from mmkd.utils.cli import add_common_args, load_cfg, parse_args, prepare, run


def get_args():
    parser = argparse.ArgumentParser(description='Test (and eval) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--out',
        type=str,
        help='dump predictions to a pickle file for offline evaluation')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved. If specified, '
        'it will be automatically saved to the work_dir/timestamp/show_dir')
    add_common_args(parser)
    return parse_args(parser)


def trigger_visualization_hook(cfg, show_dir: str) -> None:
    """Turn on the task's visualisation hook (mmdet's or mmseg's)."""
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise RuntimeError(
            '--show-dir needs a "visualization" hook in default_hooks '
            '(mmdet DetVisualizationHook or mmseg SegVisualizationHook)')
    hook['draw'] = True
    if 'Det' in str(hook.get('type', '')):
        hook['test_out_dir'] = show_dir
    else:
        cfg.visualizer['save_dir'] = show_dir


def build_cfg(args):
    """Load the config and apply the command line to it."""
    check_file(args.checkpoint, 'checkpoint')
    cfg = load_cfg(args)
    cfg.load_from = args.checkpoint
    if args.show_dir:
        trigger_visualization_hook(cfg, args.show_dir)
    if args.out is not None:
        assert args.out.endswith(('.pkl', '.pickle')), \
            '--out must be a .pkl file'
        dump = ConfigDict(type='DumpResults', out_file_path=args.out)
        evaluator = cfg.test_evaluator
        cfg.test_evaluator = (list(evaluator) if isinstance(
            evaluator, (list, tuple)) else [evaluator]) + [dump]
    prepare(cfg, args.launcher, splits=('test', ))
    return cfg


def main():
    run(build_cfg, get_args(), 'test')


if __name__ == '__main__':
    main()
