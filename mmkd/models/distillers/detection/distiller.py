"""KD + multi-level deep supervision for MMDetection 3.x detectors.

The student computes its task losses with its own ``loss()``; what
distillation compares is captured on the way (:mod:`.dense`,
:mod:`.two_stage`, :mod:`.query`); which families are supported and what
each compares is in :mod:`.families`. The teacher runs ``extract_feat``
and its head's ``forward`` (or its RoI heads' ``_bbox_forward``, or its
encoder and decoder on the distillation queries) through
:meth:`BaseDistiller.teacher_forward`: never its losses, label assignment
or post-processing; not at all while no distillation term is active.
"""
import copy
from typing import Dict, List, Optional

import torch
from mmengine.model import ModuleDict, ModuleList

from mmkd.deep_supervision.loop import DeepSupervision
from mmkd.registry import MODELS
from ..base import BaseDistiller
from ..builder import ModelSpec, load_model_cfg
from . import dense, query, two_stage
from .families import family_of, levels_of
from .teacher_cache import TeacherCache


@MODELS.register_module()
class DetectionDistiller(BaseDistiller):
    """KD + multi-level deep supervision for mmdet 3.x detectors.

    Supported (others are refused at build, with this list):
    RetinaNet, FCOS, ATSS, GFL, RTMDet, YOLOX, TOOD (dense heads);
    Faster / Mask R-CNN, Cascade (Mask) R-CNN, HTC (RoI heads);
    DINO, two-stage Deformable DETR (query-based, :mod:`.query`).

    Args:
        student (str | dict): Student detector (dict, ``mmdet::`` or local
            config path).
        teacher (str | dict): Teacher detector, same forms and family kind.
        distill (dict): One entry per term, each a loss config plus optional
            ``levels`` (indices of the FPN levels, dense heads only; default
            all). Terms: ``cls`` (the scores boxes are ranked by:
            ``mmkd.SigmoidKDLoss`` for sigmoid heads, ``mmkd.KDLoss`` for
            softmax heads and RoI heads) and ``box`` (GFL box
            distributions, LD: ``mmkd.KDLoss`` with
            ``class_reduction='mean'``). Query-based students: ``cls``
            (``mmkd.SigmoidKDLoss``), ``bbox`` (e.g. mmdet's ``L1Loss``) and
            ``iou`` (e.g. ``GIoULoss``) on the distillation queries, no
            ``levels``. An empty dict trains the auxiliary
            heads on labels only and never runs the teacher. Defaults to
            ``dict(cls=dict(type='mmkd.SigmoidKDLoss'))``.
        deep_supervision (dict, optional): The shared contract
            (:class:`mmkd.deep_supervision.loop.DeepSupervision`:
            ``stages``, ``stage_weights``, ``mode``, ``gt_weight`` (dense
            default 1; two-stage: 0, KD only), ``kd_weight``) plus
            ``channels`` (width of the auxiliary pyramid and heads; light:
            64, full: the head's) and ``head`` (keys overriding the student
            head's config in the auxiliary heads; light dense heads get
            ``stacked_convs=1``). Query-based students: ``stages`` are
            intermediate decoder layers (0 .. num_layers - 2), distilled
            from the teacher's final layer (``kd_weight``; no
            ``gt_weight``, ``channels``, ``head``: no auxiliary heads).
            Defaults to None (off).
        distill_queries (dict, optional): Query-based students only:
            ``num_proposals`` (the teacher's top encoder proposals),
            ``num_random`` (random boxes) and ``random_wh`` (their size
            range) of the shared distillation queries
            (:mod:`.query`). Defaults to None
            (:data:`.query.DEFAULT_QUERIES`).
        teacher_cache (dict, optional): Dense heads only: replay the
            teacher's outputs from a disk cache under a fixed-scale
            pipeline (``dir``, ``fallback``, ``floor``, ``max_kb``, ...;
            :class:`.teacher_cache.TeacherCache`, ``docs/teacher_cache.md``;
            add ``mmkd.TeacherCacheHook`` to ``custom_hooks``). Defaults to
            None (the live teacher at every step).
        **kwargs: The options of :class:`BaseDistiller` (``teacher_ckpt``,
            ``eval_teacher``, ...).
    """

    default_scope = 'mmdet'

    def __init__(self,
                 student: ModelSpec,
                 teacher: ModelSpec,
                 distill: dict = dict(cls=dict(type='mmkd.SigmoidKDLoss')),
                 deep_supervision: Optional[dict] = None,
                 distill_queries: Optional[dict] = None,
                 teacher_cache: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(student, teacher, **kwargs)
        s_kind, s_family = family_of(self.student, 'student')
        t_kind, t_family = family_of(self.teacher, 'teacher')
        if s_kind != t_kind:
            kinds = dict(dense='dense', two_stage='two-stage',
                         query='query-based')
            raise ValueError(
                'student and teacher must be of the same kind (dense, '
                f'two-stage or query-based): student is {kinds[s_kind]}, '
                f'teacher is {kinds[t_kind]}')
        self.two_stage = s_kind == 'two_stage'
        self.query_based = s_kind == 'query'
        self.family = s_family
        distill = dict(distill or {})
        terms = query.TERMS if self.query_based else ('cls', 'box')
        unknown = set(distill) - set(terms)
        if unknown:
            raise KeyError(f'distill: unknown terms {sorted(unknown)} '
                           f'(expected {" or ".join(map(repr, terms))})')
        if distill_queries is not None and not self.query_based:
            raise ValueError('distill_queries is for query-based (DETR '
                             f'family) students; the student is {s_kind}')
        if self.query_based:
            query.check_pair(self.student, self.teacher)
            self.distill_queries = query.queries_cfg(distill_queries,
                                                     self.teacher)
        elif self.two_stage:
            two_stage.check_pair(self.student, self.teacher, distill)
        else:
            dense.check_pair(self.student, self.teacher, s_family, t_family,
                             distill)
        self.kd_levels = {}
        self.kd_losses = ModuleDict()
        for term, cfg in distill.items():
            cfg = dict(cfg)
            self.kd_levels[term] = self._check_levels(term,
                                                      cfg.pop('levels', None))
            self.kd_losses[term] = MODELS.build(cfg)
        if self.query_based:
            query.check_losses(self.kd_losses)
        self.ds = None
        self.ds_branches = ModuleList()
        if deep_supervision:
            self._build_deep_supervision(student, dict(deep_supervision))
        self.uses_teacher = bool(self.kd_losses)
        self.teacher_cache = None if teacher_cache is None else \
            TeacherCache(self, teacher, **teacher_cache)
        self.restore_rng()

    @property
    def ds_stages(self) -> List[int]:
        return self.ds.stages if self.ds else []

    @property
    def ds_weights(self) -> List[float]:
        return self.ds.weights if self.ds else []

    def _check_levels(self, term: str, levels) -> Optional[List[int]]:
        if levels is None:
            return None
        if self.query_based:
            raise ValueError(f'distill.{term}.levels: query-based KD works '
                             'on decoder queries, which have no FPN levels '
                             '(deep_supervision.stages picks decoder layers)')
        if self.two_stage:
            raise ValueError(f'distill.{term}.levels: two-stage KD works on '
                             'RoIs, which have no FPN levels')
        n = levels_of(self.student.bbox_head)[0]
        bad = [lvl for lvl in levels if not 0 <= lvl < n]
        if bad or not levels:
            raise ValueError(f'distill.{term}.levels: {list(levels)} are not '
                             f'all FPN levels of the student (0..{n - 1})')
        return list(levels)

    def _build_deep_supervision(self, student: ModelSpec, cfg: dict) -> None:
        if self.query_based:  # the decoder layers are the levels
            self.ds = query.deep_supervision(self.student, cfg,
                                             bool(self.kd_losses))
            return
        stage_ch, stage_strides = self.student_stages()
        has_kd = bool(self.kd_losses)
        if self.two_stage:
            if cfg.get('gt_weight', 0):
                raise ValueError(
                    'deep_supervision.gt_weight: the auxiliary RoI '
                    'classifiers of a two-stage detector are trained by KD '
                    'from the teacher only (a label loss would need the RoI '
                    'head\'s sampling results); leave gt_weight at 0')
            if not has_kd:
                raise ValueError(
                    'deep_supervision on a two-stage detector trains '
                    'auxiliary RoI classifiers by KD from the teacher and '
                    'needs distill.cls (without it they get no gradient)')
            gt_default = 0.0
        else:
            if cfg.get('gt_weight', 1.0) == 0 and 'box' not in self.kd_losses:
                raise ValueError(
                    'deep_supervision.gt_weight=0 leaves the box branches of '
                    'the auxiliary heads without a gradient (only the label '
                    'loss or distill.box trains them; DDP refuses unused '
                    'parameters): keep gt_weight > 0')
            gt_default = 1.0
        self.ds = DeepSupervision(cfg, len(stage_ch), gt_default, has_kd)
        model_cfg, scope, _ = load_model_cfg(student, self.default_scope)
        head = self.student.roi_head if self.two_stage \
            else self.student.bbox_head
        head = getattr(head, 'bbox_head', head)
        head = head[0] if isinstance(head, torch.nn.ModuleList) else head
        # the student's own norm (GN heads, SyncBN runs), else BN
        norm_cfg = copy.deepcopy(
            getattr(head, 'norm_cfg', None)
            or getattr(self.student.backbone, 'norm_cfg', None)
            or dict(type='BN'))
        if self.two_stage:
            self.ds_branches = two_stage.build_branches(
                model_cfg, scope, self.ds, stage_ch, stage_strides, norm_cfg)
        else:
            self.ds_branches = dense.build_branches(
                model_cfg, scope, self.student, self.ds, stage_ch,
                stage_strides, norm_cfg)

    def loss(self, inputs: torch.Tensor,
             data_samples: list) -> Dict[str, torch.Tensor]:
        if self.query_based:
            return query.loss(self, inputs, data_samples)
        if self.two_stage:
            return two_stage.loss(self, inputs, data_samples)
        return dense.loss(self, inputs, data_samples)
