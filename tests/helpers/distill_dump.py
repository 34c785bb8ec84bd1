"""A test-only hook: each rank saves what a DDP check of a distiller needs."""
import os.path as osp

import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


@HOOKS.register_module()
class DistillerRankDumpHook(Hook):
    """After training: parameters, whether the teacher sits inside the DDP
    wrapper, and the wrapper's ``find_unused_parameters``."""

    def after_run(self, runner) -> None:
        wrapper = runner.model
        model = wrapper.module if is_model_wrapper(wrapper) else wrapper
        teacher_ids = {id(p) for p in model.teacher.parameters()}
        torch.save(
            dict(
                world_size=get_world_size(),
                wrapped=is_model_wrapper(wrapper),
                find_unused=bool(
                    getattr(wrapper, 'find_unused_parameters', False)),
                teacher_in_wrapper=any(
                    id(p) in teacher_ids for p in wrapper.parameters()),
                params={
                    k: v.detach().cpu()
                    for k, v in model.named_parameters()
                }),
            osp.join(runner.work_dir, f'distill_rank{get_rank()}.pth'))
