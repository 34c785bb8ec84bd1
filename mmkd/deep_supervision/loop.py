"""The deep-supervision contract, written once for the three distillers.

A ``deep_supervision`` config means the same in detection, segmentation
and classification:

* ``stages``: indices of the student backbone's outputs that get an
  auxiliary head. They are sorted (with their ``stage_weights``), so
  ``ds0`` is always the shallowest; a stage listed twice or out of range is
  refused with the valid range.
* ``stage_weights``: one per stage (default 1).
* ``mode``: the size of the auxiliary heads: ``'light'`` (the default:
  narrow, shallow heads, cheap) or ``'full'`` (as wide and deep as the
  student's own head). Nothing else depends on it.
* ``gt_weight``: weight of the task (label) loss on the auxiliary heads;
  the default is the task's (detection 1: the box branches of a dense head
  have no other signal; segmentation and classification 0).
* ``kd_weight``: weight of their KD terms from the teacher's final
  predictions (default 1).

Losses are prefixed ``ds<i>.`` (mmseg's convention for auxiliary heads).
While nothing trains the heads (distillation stopped and no label loss),
:func:`idle_loss` still connects them, so DDP needs no
``find_unused_parameters``.
"""
from typing import Callable, Dict, List, Sequence, Tuple

import torch
import torch.nn as nn

MODES = ('light', 'full')


def idle_loss(modules: nn.Module) -> Dict[str, torch.Tensor]:
    """``{'ds.loss_idle': 0}`` connected to every parameter of ``modules``:
    while no term trains them, DDP still sees a gradient (of 0) for each."""
    params = list(modules.parameters())
    if not params:
        return {}
    return {'ds.loss_idle': sum(p.sum() for p in params) * 0}


def _scale(value, factor: float):
    if isinstance(value, (list, tuple)):
        return [x * factor for x in value]
    return value * factor


class DeepSupervision:
    """A validated ``deep_supervision`` config and the loop over its heads.

    Args:
        cfg (dict): The ``deep_supervision`` config (keys above; a task
            may read more, e.g. ``channels``).
        num_stages (int): How many outputs the student backbone has.
        gt_default (float): The task's default ``gt_weight``.
        has_kd (bool): Whether a KD term is configured (``distill`` not
            empty).
        stage_names (Sequence[str], optional): Names of the backbone outputs
            for messages. Defaults to None (indices).
        level (str): What ``stages`` index, with its article, for
            messages. Defaults to ``'a backbone output'`` (a query
            segmentor's levels are its intermediate decoder predictions).
    """

    def __init__(self,
                 cfg: dict,
                 num_stages: int,
                 gt_default: float,
                 has_kd: bool,
                 stage_names: Sequence[str] = None,
                 level: str = 'a backbone output') -> None:
        stages = list(cfg.get('stages') or ())
        if not stages:
            raise ValueError('deep_supervision needs a non-empty "stages"')
        names = f' ({", ".join(stage_names)})' if stage_names else ''
        for s in stages:
            if not isinstance(s, int) or not 0 <= s < num_stages:
                raise ValueError(
                    f'deep_supervision.stages: {s!r} is not {level} '
                    f'index; valid: 0..{num_stages - 1}{names}')
        dup = sorted({s for s in stages if stages.count(s) > 1})
        if dup:
            raise ValueError(
                f'deep_supervision.stages: {dup} listed more than once in '
                f'{stages}; give each stage once (one head per stage)')
        weights = list(cfg.get('stage_weights') or [1.0] * len(stages))
        if len(weights) != len(stages):
            raise ValueError(
                f'deep_supervision: {len(weights)} stage_weights for '
                f'{len(stages)} stages {stages}')
        order = sorted(range(len(stages)), key=stages.__getitem__)
        self.stages: List[int] = [stages[i] for i in order]
        self.weights: List[float] = [float(weights[i]) for i in order]
        self.mode = cfg.get('mode', 'light')
        if self.mode not in MODES:
            raise ValueError(f'deep_supervision.mode must be one of {MODES} '
                             f'(the size of the auxiliary heads), got '
                             f'{self.mode!r}')
        self.gt_weight = float(cfg.get('gt_weight', gt_default))
        self.kd_weight = float(cfg.get('kd_weight', 1.0))
        if not self.gt_weight and not (self.kd_weight and has_kd):
            raise ValueError(
                'deep_supervision: gt_weight and kd_weight (or distill) are '
                'all 0, so the auxiliary heads would get no gradient')
        self.cfg = dict(cfg)

    @property
    def light(self) -> bool:
        return self.mode == 'light'

    def losses(self, heads: nn.Module, run: Callable,
               kd: Callable, teacher_on: bool
               ) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
        """Run every auxiliary head once.

        Args:
            heads (nn.Module): The heads (a ModuleList), one per stage.
            run (callable): ``run(head, stage, with_gt) -> (out, gt)``: the
                head's predictions on its stage and, when ``with_gt``, its
                label losses (a dict; keys without ``loss`` are logged
                unweighted).
            kd (callable): ``kd(out) -> dict`` of KD terms from the
                teacher's final predictions.
            teacher_on (bool): Whether the teacher ran this step.

        Returns:
            tuple: ``(label losses, KD terms)``, keys prefixed ``ds<i>.``;
            the KD terms are scaled by the distiller's schedule by the
            caller. With nothing to train, ``ds.loss_idle``.
        """
        use_kd = teacher_on and bool(self.kd_weight)
        if not self.gt_weight and not use_kd:
            return idle_loss(heads), {}
        gt_losses, kd_terms = {}, {}
        for i, (head, stage, w) in enumerate(
                zip(heads, self.stages, self.weights)):
            out, gt = run(head, stage, bool(self.gt_weight))
            for k, v in (gt or {}).items():
                gt_losses[f'ds{i}.{k}'] = _scale(v, w * self.gt_weight) \
                    if 'loss' in k else v
            if use_kd:
                for k, v in kd(out).items():
                    kd_terms[f'ds{i}.{k}'] = v * (w * self.kd_weight)
        return gt_losses, kd_terms
