"""A test-only hook: each rank saves its model's parameters after training.

Parameters only: BN running statistics are per-rank buffers (mmengine wraps
DDP with ``broadcast_buffers=False``), so they legitimately differ.
"""
import os.path as osp

import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RankParamsDumpHook(Hook):

    def after_run(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        torch.save(
            dict(
                world_size=get_world_size(),
                params={
                    k: v.detach().cpu()
                    for k, v in model.named_parameters()
                }),
            osp.join(runner.work_dir, f'params_rank{get_rank()}.pth'))
