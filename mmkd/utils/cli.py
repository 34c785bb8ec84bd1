"""What tools/train.py and tools/test.py share: arguments, config, runner."""
import argparse
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from .checkpoint import CorruptCheckpointError
from .device import adapt_cfg_to_device, init_cpu_dist
from .preflight import check_checkpoints, check_data_paths, check_file


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--cfg-options``, ``--launcher`` and ``--local-rank``/``--local_rank``."""
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override some settings in the used config, the key-value pair '
        'in xxx=yyy format will be merged into config file. If the value to '
        'be overwritten is a list, it should be like key="[a,b]" or key=a,b '
        'It also allows nested list/tuple values, e.g. key="[(a,b),(c,d)]" '
        'Note that the quotation marks are necessary and that no white space '
        'is allowed.')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (torch >= 2.0) or
    # --local_rank (older); accept both.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_args(parser: argparse.ArgumentParser) -> argparse.Namespace:
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        # mpirun gives the rank on the node in its own variable (a URL
        # checkpoint is downloaded by local rank 0 of each node)
        mpi = os.environ.get('OMPI_COMM_WORLD_LOCAL_RANK')
        os.environ['LOCAL_RANK'] = mpi if (
            mpi is not None and args.launcher == 'mpi') else str(
                args.local_rank)
    return args


def load_cfg(args: argparse.Namespace) -> Config:
    """Config with the command line applied: launcher, options, work dir."""
    check_file(args.config, 'config')
    cfg = Config.fromfile(args.config)  # acts on custom_imports
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    # work_dir: command line > config > ./work_dirs/<config name>
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg


def prepare(cfg: Config, launcher: str, splits) -> None:
    """Adapt to the device, then check the data and checkpoint paths
    (writes nothing)."""
    for note in adapt_cfg_to_device(cfg, launcher):
        print(f'[mmkd] {note}')
    check_data_paths(cfg, splits)
    check_checkpoints(cfg)


def run(build_cfg, args: argparse.Namespace, action: str) -> None:
    """Build the config (input errors exit with the message), then the
    runner, then ``runner.<action>()``."""
    try:
        cfg = build_cfg(args)
    except (FileNotFoundError, ValueError, CorruptCheckpointError) as err:
        sys.exit(f'error: {err}')
    init_cpu_dist(args.launcher)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else \
        RUNNERS.build(cfg)
    getattr(runner, action)()
    close_dist()


def close_dist() -> None:
    """After the run, every rank meets once more and the process group is
    destroyed: a group left to the interpreter's exit can abort a rank
    while its communication threads are torn down (seen with gloo as
    'terminate called without an active exception'), and torch asks for it
    with NCCL."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
