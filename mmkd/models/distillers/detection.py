"""Distillation for MMDetection 3.x detectors.

* Dense heads (RetinaNet, FCOS, ATSS, GFL, ...): KD on the class logits of
  every location of every FPN level (``distill.cls``), and for GFL-style heads
  Localization Distillation on the box distributions (``distill.box``, LD,
  https://arxiv.org/abs/2102.12252): on the student's positive locations, the
  KL over the ``reg_max + 1`` bins of each box side averaged over the bins,
  weighted by the student's top class score and summed over the sides / 4,
  exactly as mmdet's ``LDHead``.
* Two-stage detectors (Faster / Mask R-CNN): KD on the RoI classification
  logits (``distill.cls``), the teacher's RoI head run on the student's
  sampled RoIs. Cascade heads are refused at build time.
* Deep supervision: light auxiliary heads of the student's head type on
  intermediate backbone stages (:class:`StageToPyramid` builds their
  pyramid, at the student's own norm). Dense: each is trained with the head's
  own task loss and KD from the teacher's final predictions at the same
  strides. Two-stage: auxiliary RoI classifiers on the student's sampled
  RoIs, trained by KD from the teacher's RoI logits.

The teacher runs ``extract_feat`` and its head's ``forward`` (or its RoI
head's ``_bbox_forward``) through :meth:`BaseDistiller.teacher_forward`: never
its losses, label assignment or post-processing; not at all while no
distillation term is active.
"""
import copy
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.model import ModuleDict, ModuleList
from mmengine.registry import MODELS as ROOT_MODELS
from mmengine.registry import DefaultScope

from mmkd.deep_supervision.pyramid import StageToPyramid
from mmkd.losses import SigmoidKDLoss
from mmkd.registry import MODELS
from .base import BaseDistiller
from .builder import ModelSpec, load_model_cfg

#: defaults of the light auxiliary branches (``deep_supervision.mode='light'``)
LIGHT = dict(channels=64, head=dict(stacked_convs=1))


def _flat(x: torch.Tensor, channels: int) -> torch.Tensor:
    """(B, A*K, H, W) -> (B*H*W*A, K)."""
    return x.permute(0, 2, 3, 1).reshape(-1, channels)


@MODELS.register_module()
class DetectionDistiller(BaseDistiller):
    """KD + multi-level deep supervision for any mmdet 3.x detector.

    Args:
        student (str | dict): Student detector (dict, ``mmdet::`` or local
            config path).
        teacher (str | dict): Teacher detector, same forms.
        distill (dict): One entry per term, each a loss config plus optional
            ``levels`` (indices of the FPN levels; default all). Terms:
            ``cls`` (class logits; ``mmkd.SigmoidKDLoss`` for sigmoid heads,
            ``mmkd.KDLoss`` for softmax ones and RoI heads) and ``box`` (GFL
            box distributions, LD: ``mmkd.KDLoss`` with
            ``class_reduction='mean'``). An empty dict trains the auxiliary
            heads on labels only and never runs the teacher. Defaults to
            ``dict(cls=dict(type='mmkd.SigmoidKDLoss'))``.
        deep_supervision (dict, optional): ``stages`` (indices into the
            backbone's outputs), and optionally ``mode`` (``'light'``, the
            default: ``channels=64`` and the student's head with
            ``stacked_convs=1``; ``'full'``: the head's own width and depth),
            ``channels`` (width of the auxiliary pyramid and heads),
            ``head`` (keys overriding the student head's config in the
            auxiliary heads, e.g. ``dict(stacked_convs=2)``),
            ``stage_weights`` (one per stage, default 1), ``gt_weight`` and
            ``kd_weight`` (default 1). Defaults to None (off).
        **kwargs: The options of :class:`BaseDistiller` (``teacher_ckpt``,
            ``eval_teacher``, ...).
    """

    default_scope = 'mmdet'

    def __init__(self,
                 student: ModelSpec,
                 teacher: ModelSpec,
                 distill: dict = dict(cls=dict(type='mmkd.SigmoidKDLoss')),
                 deep_supervision: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(student, teacher, **kwargs)
        self.two_stage = hasattr(self.student, 'roi_head')
        distill = dict(distill or {})
        self._check_compatible(distill)
        self.kd_levels = {}
        self.kd_losses = ModuleDict()
        for term, cfg in distill.items():
            cfg = dict(cfg)
            self.kd_levels[term] = self._check_levels(term,
                                                      cfg.pop('levels', None))
            self.kd_losses[term] = MODELS.build(cfg)
        self.ds_cfg = dict(deep_supervision or {})
        self.ds_branches = ModuleList()
        self.ds_stages, self.ds_weights = [], []
        if self.ds_cfg:
            self._build_deep_supervision(student)
        self.uses_teacher = bool(self.kd_losses)

    # ------------------------------------------------------------ checks
    def _check_compatible(self, distill: dict) -> None:
        s, t = self.student, self.teacher
        unknown = set(distill) - {'cls', 'box'}
        if unknown:
            raise KeyError(f'distill: unknown terms {sorted(unknown)} '
                           "(expected 'cls' or 'box')")
        if hasattr(t, 'roi_head') != self.two_stage:
            kind = ('two-stage', 'dense')
            raise ValueError(
                'student and teacher must both be two-stage or both dense: '
                f'student is {kind[not self.two_stage]}, teacher is '
                f'{kind[not hasattr(t, "roi_head")]}')
        if self.two_stage:
            for name, det in (('student', s), ('teacher', t)):
                if isinstance(det.roi_head.bbox_head, nn.ModuleList):
                    raise ValueError(
                        f'{name} has a multi-stage RoI head '
                        f'({type(det.roi_head).__name__}: Cascade R-CNN / '
                        'HTC); mmkd distils single-stage RoI heads (Faster / '
                        'Mask R-CNN) and dense heads only')
            if 'box' in distill:
                raise ValueError(
                    'distill.box is for GFL-style dense heads; two-stage '
                    'detectors support distill.cls (RoI logits) only')
            sh, th = s.roi_head.bbox_head, t.roi_head.bbox_head
            checks = [('class count', sh.num_classes, th.num_classes)]
        else:
            sh, th = s.bbox_head, t.bbox_head
            sg, tg = sh.prior_generator, th.prior_generator
            checks = [
                ('class count', sh.num_classes, th.num_classes),
                ('level count', sg.num_levels, tg.num_levels),
                ('strides', [st[0] for st in sg.strides],
                 [st[0] for st in tg.strides]),
                ('anchors per location', sg.num_base_priors,
                 tg.num_base_priors),
                ('sigmoid classification', sh.use_sigmoid_cls,
                 th.use_sigmoid_cls),
            ]
            if 'box' in distill:
                if getattr(sh, 'reg_max', None) is None:
                    raise ValueError(
                        "distill.box needs GFL-style heads with 'reg_max'; "
                        f'student head is {type(sh).__name__}')
                checks.append(('box distribution bins (reg_max)',
                               sh.reg_max, getattr(th, 'reg_max', None)))
        for what, a, b in checks:
            if a != b:
                raise ValueError(f'student and teacher differ in {what}: '
                                 f'student {a}, teacher {b}')

    def _check_levels(self, term: str, levels) -> Optional[List[int]]:
        if levels is None:
            return None
        if self.two_stage:
            raise ValueError(f'distill.{term}.levels: two-stage KD works on '
                             'RoIs, which have no FPN levels')
        n = self.student.bbox_head.prior_generator.num_levels
        bad = [lvl for lvl in levels if not 0 <= lvl < n]
        if bad or not levels:
            raise ValueError(f'distill.{term}.levels: {list(levels)} are not '
                             f'all FPN levels of the student (0..{n - 1})')
        return list(levels)

    # ------------------------------------------------------------ DS
    def _build_deep_supervision(self, student: ModelSpec) -> None:
        cfg = self.ds_cfg
        mode = cfg.get('mode', 'light')
        if mode not in ('light', 'full'):
            raise ValueError("deep_supervision.mode must be 'light' or "
                             f"'full', got {mode!r}")
        stage_ch, stage_strides = self.student_stages()
        stages, self.ds_weights = self.deep_supervision_stages(
            cfg, len(stage_ch))
        self.ds_stages = stages
        model_cfg, scope, _ = load_model_cfg(student, self.default_scope)
        head = self.student.roi_head.bbox_head if self.two_stage \
            else self.student.bbox_head
        # the student's own norm (GN heads, SyncBN runs), else BN
        norm_cfg = copy.deepcopy(
            getattr(head, 'norm_cfg', None)
            or getattr(self.student.backbone, 'norm_cfg', None)
            or dict(type='BN'))
        if self.two_stage:
            if 'cls' not in self.kd_losses:
                raise ValueError(
                    'deep_supervision on a two-stage detector trains '
                    'auxiliary RoI classifiers by KD from the teacher and '
                    'needs distill.cls (without it they get no gradient)')
            roi = model_cfg.roi_head
            full_ch = roi.bbox_roi_extractor.out_channels
            strides = list(roi.bbox_roi_extractor.featmap_strides)
        else:
            if cfg.get('gt_weight', 1.0) == 0 and 'box' not in self.kd_losses:
                raise ValueError(
                    'deep_supervision.gt_weight=0 leaves the box branches of '
                    'the auxiliary heads without a gradient (only the label '
                    'loss or distill.box trains them; DDP refuses unused '
                    'parameters): keep gt_weight > 0')
            if cfg.get('gt_weight', 1.0) == 0 and (
                    cfg.get('kd_weight', 1.0) == 0 or not self.kd_losses):
                raise ValueError(
                    'deep_supervision: gt_weight and kd_weight (or distill) '
                    'are all 0, so the auxiliary heads would get no gradient')
            full_ch = model_cfg.bbox_head.in_channels
            strides = [
                st[0] for st in self.student.bbox_head.prior_generator.strides
            ]
        light = mode == 'light'
        channels = cfg.get('channels', LIGHT['channels'] if light else full_ch)
        overrides = dict(LIGHT['head'] if light and not self.two_stage
                         else {})
        overrides.update(cfg.get('head', {}))
        for s in stages:
            branch = dict(
                neck=StageToPyramid(stage_ch[s], channels, stage_strides[s],
                                    strides, norm_cfg=norm_cfg))
            with DefaultScope.overwrite_default_scope(scope):
                if self.two_stage:
                    # an auxiliary RoI classifier of the student's type
                    branch['roi_extractor'] = ROOT_MODELS.build(
                        dict(copy.deepcopy(roi.bbox_roi_extractor),
                             out_channels=channels))
                    # (classification only: nothing would train a box
                    # branch, and DDP refuses parameters without gradients)
                    branch['head'] = ROOT_MODELS.build(
                        dict(copy.deepcopy(roi.bbox_head),
                             in_channels=channels, with_reg=False,
                             **overrides))
                else:
                    # an auxiliary dense head of the student's type
                    head = dict(copy.deepcopy(model_cfg.bbox_head),
                                in_channels=channels,
                                train_cfg=model_cfg.get('train_cfg'),
                                test_cfg=model_cfg.get('test_cfg'))
                    if 'feat_channels' in head:
                        head['feat_channels'] = channels
                    head.update(overrides)
                    if not hasattr(self.student.bbox_head, 'stacked_convs'):
                        head.pop('stacked_convs', None)  # no conv tower
                    branch['head'] = ROOT_MODELS.build(head)
            self.ds_branches.append(ModuleDict(branch))

    # ------------------------------------------------------------ loss
    def loss(self, inputs: torch.Tensor,
             data_samples: list) -> Dict[str, torch.Tensor]:
        if self.two_stage:
            return self._two_stage_loss(inputs, data_samples)
        from mmdet.models.utils import unpack_gt_instances
        gt, gt_ignore, metas = unpack_gt_instances(data_samples)
        s_stages = self.student.backbone(inputs)
        s_feats = self.student.neck(s_stages) \
            if self.student.with_neck else s_stages
        head = self.student.bbox_head
        s_outs = head(s_feats)
        losses = head.loss_by_feat(*s_outs, gt, metas, gt_ignore)
        t_outs, pos = None, None
        if self.teacher_active:
            teacher = self.teacher
            t_outs = self.teacher_forward(
                lambda x: teacher.bbox_head(teacher.extract_feat(x)), inputs)
            if 'box' in self.kd_losses:
                pos = self._positives(head, s_outs[0], gt, metas, gt_ignore)
        kd = {}
        if t_outs is not None:
            kd.update(self._dense_kd(s_outs, t_outs, head, pos, 'loss_kd'))
        gt_w0 = self.ds_cfg.get('gt_weight', 1.0)
        kd_w0 = self.ds_cfg.get('kd_weight', 1.0)
        for i, (branch, w) in enumerate(zip(self.ds_branches,
                                            self.ds_weights)):
            outs = branch['head'](branch['neck'](s_stages[self.ds_stages[i]]))
            if gt_w0:
                for k, v in branch['head'].loss_by_feat(
                        *outs, gt, metas, gt_ignore).items():
                    losses[f'ds{i}.{k}'] = [x * w * gt_w0 for x in v] \
                        if isinstance(v, list) else v * w * gt_w0
            if t_outs is not None and kd_w0:
                for k, v in self._dense_kd(outs, t_outs, head, pos,
                                           f'ds{i}.loss_kd').items():
                    kd[k] = v * w * kd_w0
        losses.update(self.scaled(kd))
        if t_outs is None and not gt_w0:
            losses.update(self.idle_loss(self.ds_branches))
        return losses

    def _dense_kd(self, s_outs: Sequence, t_outs: Sequence, head: nn.Module,
                  pos: Optional[List[torch.Tensor]],
                  prefix: str) -> Dict[str, torch.Tensor]:
        losses = {}
        num_levels = len(s_outs[0])
        for term, loss in self.kd_losses.items():
            for lvl in self.kd_levels[term] or range(num_levels):
                i = 0 if term == 'cls' else 1
                s, t = s_outs[i][lvl], t_outs[i][lvl]
                if s.shape != t.shape:
                    raise RuntimeError(
                        f'{prefix}_{term} level {lvl}: student output '
                        f'{tuple(s.shape)} vs teacher {tuple(t.shape)}')
                name = f'{prefix}_{term}_l{lvl}'
                if term == 'cls':
                    losses[name] = self._cls_kd(loss, s, t,
                                                head.cls_out_channels)
                else:
                    losses[name] = self._box_kd(loss, s, t, s_outs[0][lvl],
                                                pos[lvl], head)
        return losses

    @staticmethod
    def _cls_kd(loss: nn.Module, s: torch.Tensor, t: torch.Tensor,
                channels: int) -> torch.Tensor:
        """Class-logit KD of one level: sigmoid KD on the maps in their own
        layout, softmax KD on flattened locations."""
        if isinstance(loss, SigmoidKDLoss):
            return loss(s, t, channels=channels)
        return loss(_flat(s, channels), _flat(t, channels))

    @staticmethod
    def _box_kd(loss: nn.Module, s_box: torch.Tensor, t_box: torch.Tensor,
                s_cls: torch.Tensor, pos: torch.Tensor,
                head: nn.Module) -> torch.Tensor:
        """LD on one level: the positive locations' box sides, weighted by
        the student's top class score there (detached), sum / 4."""
        bins = head.reg_max + 1
        s = s_box.permute(0, 2, 3, 1).reshape(pos.numel(), 4 * bins)[pos]
        t = t_box.permute(0, 2, 3, 1).reshape(pos.numel(), 4 * bins)[pos]
        with torch.no_grad():
            score = _flat(s_cls, head.cls_out_channels).sigmoid().max(
                -1).values[pos]
        if s.numel() == 0:
            return s_box.sum() * 0
        return loss(s.reshape(-1, bins), t.reshape(-1, bins),
                    weight=score.repeat_interleave(4), avg_factor=4.0)

    @staticmethod
    @torch.no_grad()
    def _positives(head: nn.Module, cls_scores: List[torch.Tensor], gt,
                   metas, gt_ignore) -> List[torch.Tensor]:
        """Per level, a flat ``(B * H * W * A,)`` mask of the student head's
        positive samples (its own assigner, as in its loss)."""
        sizes = [c.shape[-2:] for c in cls_scores]
        anchors, valid = head.get_anchors(sizes, metas,
                                          device=cls_scores[0].device)
        labels = head.get_targets(
            anchors, valid, gt, metas,
            batch_gt_instances_ignore=gt_ignore)[1]
        return [((lb >= 0) & (lb < head.num_classes)).reshape(-1)
                for lb in labels]

    def _two_stage_loss(self, inputs: torch.Tensor,
                        data_samples: list) -> Dict[str, torch.Tensor]:
        """The student's own loss; stages, RoIs and RoI logits are captured
        on the way (forward hooks: the RoI head has no method that returns
        them), so none of mmdet's RoI-head loss code is copied here."""
        roi_head = self.student.roi_head
        seen: Dict[str, torch.Tensor] = {}

        def keep(name, pick):
            # hooks must return None, or they replace the args / output
            def hook(module, *args):
                seen.setdefault(name, pick(args))
            return hook

        hooks = [
            self.student.backbone.register_forward_hook(
                keep('stages', lambda a: a[1])),
            roi_head.bbox_roi_extractor.register_forward_pre_hook(
                keep('rois', lambda a: a[0][1])),
            roi_head.bbox_head.register_forward_hook(
                keep('cls', lambda a: a[1][0])),
        ]
        try:
            losses = self.student.loss(inputs, data_samples)
        finally:
            for h in hooks:
                h.remove()
        if not self.teacher_active:
            losses.update(self.idle_loss(self.ds_branches))
            return losses
        rois = seen['rois']
        loss = self.kd_losses['cls']
        teacher = self.teacher
        t_cls = self.teacher_forward(
            lambda x, r: teacher.roi_head._bbox_forward(
                teacher.extract_feat(x), r)['cls_score'], inputs, rois)
        kd = {'loss_kd_cls_roi': loss(seen['cls'], t_cls)}
        # auxiliary RoI heads: KD from the teacher's RoI logits (the label
        # loss would need the RoI head's sampling results)
        for i, (branch, w) in enumerate(zip(self.ds_branches,
                                            self.ds_weights)):
            feats = branch['neck'](seen['stages'][self.ds_stages[i]])
            extractor = branch['roi_extractor']
            cls = branch['head'](extractor(feats[:extractor.num_inputs],
                                           rois))[0]
            kd[f'ds{i}.loss_kd_cls_roi'] = w * self.ds_cfg.get(
                'kd_weight', 1.0) * loss(cls, t_cls)
        losses.update(self.scaled(kd))
        return losses
