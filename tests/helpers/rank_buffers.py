"""A test-only hook: each rank saves its model's buffers at the end of every
training epoch, before mmengine's SyncBuffersHook averages them."""
import os.path as osp

import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class RankBuffersDumpHook(Hook):

    priority = 'ABOVE_NORMAL'  # before SyncBuffersHook ('NORMAL')

    def after_train_epoch(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        torch.save(
            dict(
                world_size=get_world_size(),
                buffers={
                    k: v.detach().cpu().clone()
                    for k, v in model.named_buffers()
                }),
            osp.join(runner.work_dir,
                     f'buffers_epoch{runner.epoch + 1}_rank{get_rank()}.pth'))
