"""A disk cache of the teacher's outputs for dense detection KD.

``teacher_cache=dict(dir=...)`` on :class:`~.distiller.DetectionDistiller`
(RetinaNet, FCOS, ATSS, GFL, TOOD, ... dense heads). Under a training
pipeline whose only random transform is a flip (the COCO 1x / 2x protocol),
the teacher sees each training image in a handful of forms, so over 12-24
epochs it recomputes the same outputs many times; the cache computes them
once and replays them. Usage, measured costs and limits:
``docs/teacher_cache.md``.

**Exact replays only.** An entry is the teacher's output for one image *in
one batch layout*. Its key is the image (``img_path``, else ``img_id``) and
everything of the augmentation that reaches the teacher's input:
``flip`` / ``flip_direction``, ``scale_factor``, ``ori_shape``,
``img_shape``, ``pad_shape`` and the batch's ``batch_input_shape``. The
batch shape is in the key because the padding to it changes the teacher's
features near the image's border (receptive field): the same image padded
to another batch shape is another input. Entries live in a namespace (a
sub-folder) named by a hash of the teacher's fp32 weights, its config, the
training pipeline, the student's data preprocessor (normalisation, padding),
the teacher's resolved dtype, memory format and device type, and the
storage settings: a changed teacher, pipeline or setting never reads an
old entry. A pipeline with a random transform the key cannot describe
(``RandomResize``, ``RandomCrop``, ``Mosaic``, ``MixUp``,
``PhotoMetricDistortion``, ...; any transform not known to be
deterministic) is refused, naming it (``fallback='live'``: the teacher runs
live for the whole run, said once). The pipeline comes from the runner's
config through :class:`TeacherCacheHook` (``custom_hooks``), or from
``teacher_cache.pipeline``.

**Compact entries.** Per image and FPN level, fp16:

* the score logits the KD compares (:func:`~.families.score_logits`),
  sparsified: the (anchor, class, location) entries above the floor logit
  ``logit(floor)`` are stored, every other one is read back as the floor.
  ``max_kb`` caps an entry: when more entries pass the floor than fit, the
  image's floor is raised to the logit that keeps the largest ones (the
  entry records its floor). :func:`sigmoid_kd_error_bound` bounds what this
  changes in the sigmoid KD loss and its gradient;
* for LD (``distill.box``) the box distributions at the student head's
  positive locations only (its assigner's, computed at fill time; GFL's
  ATSS assigner depends on the anchors and boxes only, so the key fixes
  them). A later read whose positives are not all stored runs the teacher
  live for that image (counted as ``uncovered``).

An entry file is a header (JSON), the arrays and a CRC32 trailer, written to
a temporary file and renamed into place (``os.replace``): a crash leaves
either the old file, the new one or a temporary file that is never read; a
truncated or otherwise invalid file is ignored (counted as ``corrupt``) and
written again. Each DDP rank writes the entries of the images it sees.

**Overlap.** The reads of a batch's entries start in a background thread
when the distiller's ``loss()`` starts and are awaited after the student's
forward (the teacher's output is needed only then); compressing and
writing new entries happen in another background thread. A batch where
some images miss runs the teacher on those images only (the key fixes the
batch shape, so their inputs are the same as in the whole batch).
"""
import hashlib
import json
import logging
import math
import os
import os.path as osp
import struct
import threading
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmkd.registry import HOOKS
from .families import DenseFamily, cls_channels, levels_of, score_logits

FORMAT_VERSION = 1
_MAGIC, _END = b'MMKDTC01', b'TCOK'
_HEAD = struct.Struct('<II')  # header bytes, payload bytes
_CRC = struct.Struct('<I')
#: fp16 rounding: |x - fp16(x)| <= 2^-11 |x| (normal range), with margin
FP16_REL = 2.0**-11 * (1 + 2.0**-9)
#: COCO train2017 images, for the size extrapolation printed at start
COCO_TRAIN_IMAGES = 118287

# ---------------------------------------------------------------- pipeline
#: transforms whose output depends only on the image and on what the key
#: holds (RandomFlip: ``flip`` / ``flip_direction`` are in the key)
EXACT_TRANSFORMS = frozenset({
    'LoadImageFromFile', 'LoadImageFromNDArray',
    'LoadMultiChannelImageFromFiles',
    'LoadAnnotations', 'LoadPanopticAnnotations', 'LoadEmptyAnnotations',
    'LoadProposals', 'InferencerLoader', 'PackDetInputs', 'FilterAnnotations',
    'Resize', 'FixShapeResize', 'FixScaleResize', 'ResizeShortestEdge',
    'RandomFlip', 'Pad', 'CenterCrop', 'Normalize', 'ToTensor',
    'ImageToTensor', 'Transpose', 'SegRescale', 'ProposalBroadcaster'
})
#: random transforms and why the key cannot describe them
RANDOM_TRANSFORMS = {
    'RandomResize': 'a random scale per image',
    'RandomChoiceResize': 'one of several scales per image (k scales: k '
    'times the entries and a k-th of the hits)',
    'RandomCrop': 'a random crop window',
    'MinIoURandomCrop': 'a random crop window',
    'RandomCenterCropPad': 'a random crop window',
    'RandomShift': 'a random shift',
    'Expand': 'a random canvas and offset',
    'Mosaic': 'four random images per sample',
    'CachedMosaic': 'random images per sample',
    'MixUp': 'a random second image',
    'CachedMixUp': 'a random second image',
    'CopyPaste': 'objects of a random second image',
    'RandomAffine': 'a random affine warp',
    'PhotoMetricDistortion': 'random colour changes',
    'YOLOXHSVRandomAug': 'random colour changes',
    'RandomGrayscale': 'random colour changes',
    'Albu': 'random albumentations',
    'AutoAugment': 'a random policy',
    'RandAugment': 'random operations',
    'RandomErasing': 'random erased patches',
    'CutOut': 'random erased patches',
    'RandomChoice': 'a random transform',
    'RandomApply': 'a random transform',
    'RandomOrder': 'a random order',
    'InstaBoost': 'random object jitter',
    'Corrupt': 'random corruptions',
    'BatchSyncRandomResize': 'a random batch scale',
}
for _name in ('Rotate', 'ShearX', 'ShearY', 'TranslateX', 'TranslateY',
              'GeomTransform'):
    RANDOM_TRANSFORMS[_name] = 'a random geometric transform'
for _name in ('Color', 'Brightness', 'Contrast', 'Sharpness', 'Solarize',
              'SolarizeAdd', 'Posterize', 'Equalize', 'AutoContrast',
              'Invert', 'ColorTransform'):
    RANDOM_TRANSFORMS[_name] = 'a random colour transform'
#: batch augments of the data preprocessor that are deterministic
EXACT_BATCH_AUGMENTS = frozenset({'BatchFixedSizePad'})


def _type_name(t) -> str:
    if isinstance(t, type):
        return t.__name__
    return str(t).rsplit('.', 1)[-1]


def find_pipelines(dataset_cfg) -> List[list]:
    """Every ``pipeline`` list in a (possibly wrapped) dataset config:
    ``RepeatDataset`` / ``ConcatDataset`` / ``MultiImageMixDataset``
    (whose own pipeline holds Mosaic / MixUp) included."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == 'pipeline' and isinstance(v, (list, tuple)):
                    found.append(list(v))
                else:
                    walk(v)
        elif isinstance(node, (list, tuple)):
            for v in node:
                walk(v)

    walk(dataset_cfg)
    return found


def pipeline_problems(pipelines: Sequence[list],
                      trusted: Sequence[str] = ()) -> List[str]:
    """The transforms of ``pipelines`` (nested ones included) whose output
    the cache key cannot describe, each as ``'Name (why)'``."""
    problems = []

    def check(transform):
        if not isinstance(transform, dict):
            problems.append(f'{type(transform).__name__} (not a config '
                            'dict: cannot tell what it does)')
            return
        name = _type_name(transform.get('type'))
        if name in trusted or name in EXACT_TRANSFORMS:
            pass
        elif name in RANDOM_TRANSFORMS:
            problems.append(f'{name} ({RANDOM_TRANSFORMS[name]})')
        else:
            problems.append(
                f'{name} (not known to be deterministic; if its output '
                'depends only on the image and the key, list it in '
                'teacher_cache.trusted_transforms)')
        for key in ('transforms', 'policies'):  # wrappers: check inside
            for sub in transform.get(key) or []:
                for t in (sub if isinstance(sub, (list, tuple)) else [sub]):
                    check(t)

    for pipeline in pipelines:
        for transform in pipeline:
            check(transform)
    return problems


# ---------------------------------------------------------------- keys
def _plain(v):
    """JSON-able, rounded form of a metainfo value."""
    if isinstance(v, torch.Tensor):
        v = v.tolist()
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (np.floating, float)):
        return round(float(v), 6)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


#: the metainfo that describes the teacher's input besides the image
KEY_FIELDS = ('flip', 'flip_direction', 'scale_factor', 'ori_shape',
              'img_shape', 'pad_shape', 'batch_input_shape')
#: fields a training sample must carry to be keyed
REQUIRED_FIELDS = ('scale_factor', 'img_shape', 'batch_input_shape')


def image_key(meta: dict) -> Tuple[Optional[str], str]:
    """``(key, description)`` of one sample's teacher input, or
    ``(None, what is missing)``. No ``flip`` means no flip transform."""
    ident = meta.get('img_path', meta.get('img_id'))
    missing = [k for k in REQUIRED_FIELDS if meta.get(k) is None]
    if ident is None:
        missing.insert(0, 'img_path / img_id')
    if missing:
        return None, ', '.join(missing)
    desc = dict(img=_plain(ident))
    for k in KEY_FIELDS:
        desc[k] = _plain(meta.get(k, False if k == 'flip' else None))
    text = json.dumps(desc, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest(), text


def _json(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=repr)


def weights_hash(state: Dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of an fp32 state
    dict (R101 RetinaNet, 218 MB: ~0.2 s)."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach()
        if t.is_floating_point():
            t = t.float()
        t = t.cpu().contiguous()
        h.update(f'{name}|{t.dtype}|{tuple(t.shape)}|'.encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


# ---------------------------------------------------------------- entries
def floor_logit(p: float) -> float:
    return math.log(p / (1 - p))


def sparsify(levels: List[Optional[torch.Tensor]], floor: float,
             max_values: Optional[int]) -> Tuple[float, list]:
    """Per level ``(shape, flat indices, fp16 values)`` of the entries of
    one image's score maps above the floor logit, and that floor: ``floor``,
    or higher where more than ``max_values`` entries pass it (then about
    the ``max_values`` largest are kept, never more). NumPy on the host
    (RetinaNet at 1333x800: 16 M logits, ~0.1 s, at fills only)."""
    arrs = [None if z is None else
            z.detach().float().cpu().numpy().reshape(-1) for z in levels]
    live = [a for a in arrs if a is not None]
    n = sum(int(np.count_nonzero(a > floor)) for a in live)
    if max_values is not None and n > max_values:
        floor = max(floor, _budget_floor(live, max_values))
    out = []
    for a, z in zip(arrs, levels):
        if a is None:
            out.append(None)
            continue
        idx = np.flatnonzero(a > floor)
        out.append((tuple(z.shape), idx, a[idx].astype(np.float16)))
    return floor, out


def _budget_floor(arrs: List[np.ndarray], k: int) -> float:
    """A logit with at most ``k`` (and, but for sampling luck, close to
    ``k``) entries of ``arrs`` above it: a quantile of a strided sample
    aimed at 0.95 k, then, if more pass it, the exact cut among those."""
    if k <= 0:
        return float(max(a.max() for a in arrs if a.size))
    total = sum(a.size for a in arrs)
    # ~1000 sampled entries above the cut: its count within a few %
    stride = max(1, total * k // (1000 * total + 32 * k * k + k))
    sample = np.concatenate([a[::stride] for a in arrs])
    above = max(1, int(round(0.95 * k * sample.size / total)))
    cut = sample.size - above
    t = float(np.partition(sample, cut)[cut]) if cut > 0 else \
        float(sample.min())
    cand = np.concatenate([a[a > t] for a in arrs])
    if cand.size > k:
        t = float(np.partition(cand, cand.size - k - 1)[cand.size - k - 1])
    return t


def serialise(key: str, desc: str, floor: float, cls: list,
              box: list) -> bytes:
    """One entry file: magic, lengths, JSON header, arrays, CRC32, end."""
    parts, header = [], dict(key=key, desc=desc, floor=floor, cls=[], box=[])
    offset = 0

    def put(data: bytes) -> list:
        nonlocal offset
        parts.append(data)
        offset += len(data)
        return [offset - len(data), len(data)]

    for lvl, item in enumerate(cls):
        if item is None:
            continue
        shape, idx, vals = item
        deltas = np.diff(idx, prepend=0).astype('<u4')
        header['cls'].append(dict(
            level=lvl, shape=list(shape), n=len(idx),
            idx=put(zlib.compress(deltas.tobytes(), 1)),
            val=put(vals.astype('<f2').tobytes())))
    for lvl, item in enumerate(box):
        if item is None:
            continue
        rows_shape, rows, vals = item
        header['box'].append(dict(
            level=lvl, shape=list(rows_shape), n=len(rows),
            rows=put(rows.astype('<u4').tobytes()),
            val=put(vals.astype('<f2').tobytes())))
    head = json.dumps(header).encode()
    payload = b''.join(parts)
    crc = zlib.crc32(payload, zlib.crc32(head))
    return b''.join((_MAGIC, _HEAD.pack(len(head), len(payload)), head,
                     payload, _CRC.pack(crc), _END))


class Entry:
    """A decoded entry: ``floor``, and per level ``cls[l] = (shape,
    indices, values)``, ``box[l] = ((rows, D), rows, values)``."""

    def __init__(self, floor: float, cls: dict, box: dict,
                 nbytes: int) -> None:
        self.floor, self.cls, self.box, self.nbytes = floor, cls, box, nbytes


def parse(data: bytes, key: str) -> Optional[Entry]:
    """The entry in ``data``, or None if the bytes are not a complete,
    intact entry for ``key`` (truncated, partial, corrupt, another key)."""
    fixed = len(_MAGIC) + _HEAD.size
    if len(data) < fixed + _CRC.size + len(_END) or \
            not data.startswith(_MAGIC) or not data.endswith(_END):
        return None
    hl, pl = _HEAD.unpack_from(data, len(_MAGIC))
    if len(data) != fixed + hl + pl + _CRC.size + len(_END):
        return None
    head = data[fixed:fixed + hl]
    payload = data[fixed + hl:fixed + hl + pl]
    crc = _CRC.unpack_from(data, fixed + hl + pl)[0]
    if zlib.crc32(payload, zlib.crc32(head)) != crc:
        return None
    try:
        header = json.loads(head)
        if header['key'] != key:
            return None
        cls, box = {}, {}
        for c in header['cls']:
            o, n = c['idx']
            idx = np.cumsum(np.frombuffer(zlib.decompress(payload[o:o + n]),
                                          '<u4'), dtype=np.int64)
            o, n = c['val']
            vals = np.frombuffer(payload[o:o + n], '<f2').copy()
            if len(idx) != c['n'] or len(vals) != c['n']:
                return None
            cls[c['level']] = (tuple(c['shape']), idx, vals)
        for b in header['box']:
            o, n = b['rows']
            rows = np.frombuffer(payload[o:o + n], '<u4').astype(np.int64)
            o, n = b['val']
            vals = np.frombuffer(payload[o:o + n], '<f2').reshape(
                len(rows), b['shape'][1]).copy()
            box[b['level']] = (tuple(b['shape']), rows, vals)
        return Entry(float(header['floor']), cls, box, len(data))
    except (KeyError, ValueError, TypeError, zlib.error):
        return None


# ---------------------------------------------------------------- bounds
def _entropy(q: torch.Tensor) -> torch.Tensor:
    return -(torch.xlogy(q, q) + torch.xlogy(1 - q, 1 - q))


def sigmoid_kd_error_bound(student: torch.Tensor, cached: torch.Tensor,
                           floor, temperature: float = 1.0,
                           channels: Optional[int] = None):
    """How far :func:`mmkd.losses.sigmoid_kd_loss` (``loss_weight`` 1) on
    cached teacher logits can be from the loss on the true ones.

    The true logits are unknown but consistent with the entry: below the
    floor where the cache holds the floor, within fp16 rounding of the
    cached value elsewhere. Per element, with ``a = z_s / T``,
    ``q_f = sigmoid(floor / T)``:

    * floored: the binary KL ``f(q) = softplus(a) - a q - H(q)`` moves by
      at most ``|integral_q^q_f (logit u - a) du|`` for ``q`` in
      ``[0, q_f]``: ``H(q_f) + a q_f`` when ``a >= floor / T``, else
      ``2 softplus(a) - H(q_f) - a q_f``; its gradient in ``z_s``,
      ``(sigmoid(a) - q) / T``, by at most ``q_f / T``;
    * stored: ``|d| <= 2^-11 |z| / T`` (fp16), so the KL moves by at most
      ``(|b - a| + d) d / 4`` and the gradient by ``d / (4 T)``.

    Both scale by ``T^2 / locations`` as the loss does.

    Args:
        student (Tensor): Student logits, ``(B, A*C, H, W)``.
        cached (Tensor): The cached teacher logits, same shape.
        floor (float | Tensor): The floor logit (a ``(B,)`` tensor for a
            per-image floor).
        temperature (float): The loss's T. Defaults to 1.0.
        channels (int, optional): Classes per prior (``C``) of a
            ``(B, A*C, H, W)`` map, as the loss takes it. Defaults to None
            (classes last).

    Returns:
        tuple: ``(loss bound, gradient bound)``: a scalar tensor, and a
        tensor of the student's shape bounding each element of
        ``|grad_cached - grad_true|``.
    """
    t = float(temperature)
    s = student.detach().float()
    z = cached.detach().float()
    if not torch.is_tensor(floor):
        floor = torch.full((s.shape[0], ), float(floor))
    f = floor.to(s).view(-1, *([1] * (s.dim() - 1)))
    a, b_f = s / t, f / t
    q_f = torch.sigmoid(b_f)
    floored = z <= f
    h_f = _entropy(q_f)
    kl_floor = torch.where(a >= b_f, h_f + a * q_f,
                           2 * F.softplus(a) - h_f - a * q_f)
    d = z.abs() * FP16_REL / t
    kl_stored = ((z / t - a).abs() + d) * d / 4
    per_el = torch.where(floored, kl_floor, kl_stored)
    grad = torch.where(floored, q_f.expand_as(s), d / 4) / t
    locations = s.numel() // (channels or s.shape[-1])  # as the loss
    scale = t * t / locations
    return per_el.sum() * scale, grad * scale


# ---------------------------------------------------------------- cache
class _Ticket:
    """The reads of one batch: keys, descriptions, futures (None: no
    cache for this batch)."""

    def __init__(self, keys, descs, futures) -> None:
        self.keys, self.descs, self.futures = keys, descs, futures


class TeacherCache:
    """The teacher-output cache of a dense :class:`DetectionDistiller`
    (see the module doc; built from ``teacher_cache=dict(...)``).

    Args:
        distiller: The distiller (checked: dense heads only).
        teacher_spec: The distiller's ``teacher`` (config path or dict),
            hashed into the namespace.
        dir (str): Where the namespaces (one folder per teacher / pipeline /
            setting hash) are. Required.
        fallback (str): What a pipeline or batch the key cannot describe
            does: ``'error'`` (raise, naming the transform or the missing
            metainfo) or ``'live'`` (run the live teacher for it, said
            once). Defaults to ``'error'``.
        floor (float): Probability floor of the stored score maps
            (``sigmoid``); entries below read back as ``logit(floor)``.
            Defaults to 0.01 (RetinaNet's prior probability; a fifth of
            mmdet's 0.05 test score threshold).
        max_kb (float, optional): Size cap of one entry (an image in one
            form) in KiB: the score maps get what the LD rows leave, at 4
            bytes per stored value; more values above the floor raise the
            image's floor. Defaults to 96 (<= 200 KB per image and its
            flip). None: no cap.
        pipeline (list, optional): The training pipeline (or a list of
            them), when no :class:`TeacherCacheHook` hands over the
            runner's. Defaults to None.
        trusted_transforms (Sequence[str]): Transform types to accept as
            deterministic besides :data:`EXACT_TRANSFORMS`. Defaults to ().
        log_interval (int): Iterations between statistics lines of the
            hook (0: at epoch ends only). Defaults to 0.
    """

    def __init__(self,
                 distiller,
                 teacher_spec,
                 dir: Optional[str] = None,
                 fallback: str = 'error',
                 floor: float = 0.01,
                 max_kb: Optional[float] = 96,
                 pipeline: Optional[list] = None,
                 trusted_transforms: Sequence[str] = (),
                 log_interval: int = 0) -> None:
        if not dir:
            raise ValueError('teacher_cache.dir: where the entries go is '
                             'required')
        if fallback not in ('error', 'live'):
            raise ValueError("teacher_cache.fallback: 'error' or 'live', "
                             f'got {fallback!r}')
        if not 0 < floor < 0.5:
            raise ValueError(f'teacher_cache.floor: a probability in (0, '
                             f'0.5), got {floor}')
        if getattr(distiller, 'two_stage', False) or getattr(
                distiller, 'query_based', False) or not isinstance(
                getattr(distiller, 'family', None), DenseFamily):
            raise ValueError(
                'teacher_cache: dense heads only (RetinaNet, FCOS, ATSS, '
                'GFL, ...); a two-stage teacher scores the student\'s RoIs, '
                'which change every step, and query-based heads have no '
                'fixed locations: there is nothing to replay')
        self.dir = dir
        self.fallback = fallback
        self.floor_p = floor
        self.floor = floor_logit(floor)
        self.max_kb = max_kb
        self.trusted = tuple(trusted_transforms)
        self.log_interval = log_interval
        n_levels = levels_of(distiller.student.bbox_head)[0]
        terms = distiller.kd_losses
        self.cls_levels = (distiller.kd_levels.get('cls') or
                           list(range(n_levels))) if 'cls' in terms else []
        self.box_levels = (distiller.kd_levels.get('box') or
                           list(range(n_levels))) if 'box' in terms else []
        self.n_levels = n_levels
        head = distiller.student.bbox_head
        self.score_channels = levels_of(head)[2] * cls_channels(head)
        from ..builder import load_model_cfg
        t_cfg = load_model_cfg(teacher_spec, distiller.default_scope)[0]
        self._static = dict(
            format=FORMAT_VERSION, teacher_cfg=_json(t_cfg),
            score=distiller.family.score, floor=floor, max_kb=max_kb,
            cls_levels=self.cls_levels, box_levels=self.box_levels,
            preprocessor=self._preprocessor_text(distiller))
        self._weights = None
        self._namespace = {}
        self.pipeline_text = None
        self.enabled = None  # None: no pipeline yet; False: live fallback
        self._said = set()
        self._reader = ThreadPoolExecutor(1, thread_name_prefix='tc-read')
        self._writer = ThreadPoolExecutor(1, thread_name_prefix='tc-write')
        self._pending: List[Future] = []
        self._lock = threading.Lock()
        self.stats = dict(hits=0, misses=0, uncovered=0, corrupt=0,
                          live_batches=0, written=0, written_bytes=0,
                          read_bytes=0, write_errors=0, read_wait_s=0.0)
        self._first_sizes: List[Tuple[int, int, float]] = []
        self._size_reported = False
        if pipeline is not None:
            self.set_pipeline(pipeline, 'teacher_cache.pipeline')
        self._check_batch_augments(distiller)

    def __deepcopy__(self, memo):
        return self  # EMA copies of the distiller share the one cache

    # ------------------------------------------------------------ setup
    @staticmethod
    def _preprocessor_text(d) -> str:
        from ..teacher import normalisation
        pre = d.data_preprocessor
        n = normalisation(pre)
        return _json(dict(
            mean=None if n['mean'] is None else n['mean'].tolist(),
            std=None if n['std'] is None else n['std'].tolist(),
            flip=n['flip'],
            pad_size_divisor=getattr(pre, 'pad_size_divisor', None),
            pad_value=getattr(pre, 'pad_value', None),
            batch_augments=[type(b).__name__ for b in
                            (getattr(pre, 'batch_augments', None) or [])]))

    def _check_batch_augments(self, d) -> None:
        augs = getattr(d.data_preprocessor, 'batch_augments', None) or []
        bad = [type(b).__name__ for b in augs
               if type(b).__name__ not in EXACT_BATCH_AUGMENTS]
        unknown = 'a batch augment not known to be deterministic'
        if bad:
            self._refuse([f'{n} ({RANDOM_TRANSFORMS.get(n, unknown)})'
                          for n in bad],
                         "the data preprocessor's batch_augments")

    def set_pipeline(self, pipeline, source: str) -> None:
        """Check the training pipeline (a list of transform configs, or a
        list of such lists) and hash it into the namespace; refuse a
        random transform (``fallback='error'``) or switch the cache off for
        the run (``'live'``)."""
        pipelines = [list(p) for p in pipeline] if pipeline and all(
            isinstance(p, (list, tuple)) for p in pipeline) else \
            [list(pipeline or [])]
        self.pipeline_text = _json(pipelines)
        self._namespace = {}
        problems = pipeline_problems(pipelines, self.trusted)
        if problems:
            self._refuse(problems, source)
        elif self.enabled is None:
            self.enabled = True

    def _refuse(self, problems: List[str], source: str) -> None:
        what = (f'teacher_cache: {source} has random transforms whose output '
                'the cache key (image, flip, scale factor, image / pad / '
                'batch shape) cannot describe: ' + '; '.join(problems))
        if self.fallback == 'error':
            raise ValueError(what + ". Cache only a fixed-scale pipeline "
                             "(Resize + RandomFlip), or set "
                             "teacher_cache.fallback='live'")
        self.enabled = False
        self._say('off', what + '. fallback=live: the teacher runs live for '
                  'every batch of this run')

    def _say(self, topic: str, message: str, level: str = 'WARNING') -> None:
        """Log ``message`` once per ``topic``."""
        if topic not in self._said:
            self._said.add(topic)
            print_log(message, logger='current',
                      level=getattr(logging, level))

    def namespace(self, d) -> str:
        """The folder of this teacher, pipeline and setting (its hash is
        computed once per device type and dtype)."""
        runner = d.teacher_runner
        runner.prepare()  # the dtype is resolved for the current device
        memo = (runner.device.type, runner.dtype)
        if memo not in self._namespace:
            if self._weights is None:
                state = runner._fp32_state or runner.model.state_dict()
                self._weights = weights_hash(state)
            parts = dict(self._static, weights=self._weights,
                         pipeline=self.pipeline_text, device=memo[0],
                         dtype=str(memo[1]),
                         channels_last=runner.channels_last)
            digest = hashlib.sha256(_json(parts).encode()).hexdigest()[:16]
            path = osp.join(self.dir, digest)
            os.makedirs(path, exist_ok=True)
            meta = osp.join(path, 'namespace.json')
            if not osp.exists(meta):
                _atomic_write(meta, json.dumps(parts, indent=1).encode())
            self._namespace[memo] = path
            self._say('ns' + path, f'teacher cache: {path} (teacher '
                      f'weights {self._weights[:12]}, {memo[1]} on '
                      f'{memo[0]}; entries keyed by image, flip, scale '
                      'factor, image / pad / batch shape)', 'INFO')
        return self._namespace[memo]

    # ------------------------------------------------------------ reads
    def fetch(self, d, data_samples: list) -> Optional[_Ticket]:
        """Start reading the entries of a batch (background thread); None
        when this batch runs the live teacher."""
        if self.enabled is None:
            raise RuntimeError(
                'teacher_cache: the training pipeline is unknown, so the '
                "cache cannot tell exact replays. Add dict(type='mmkd."
                "TeacherCacheHook') to custom_hooks (it hands the runner's "
                'train_dataloader pipeline over before training), or give '
                'teacher_cache.pipeline')
        if not self.enabled:
            self.stats['live_batches'] += 1
            return None
        keys, descs = [], []
        for s in data_samples:
            key, desc = image_key(s.metainfo)
            if key is None:
                msg = (f'teacher_cache: a training sample lacks {desc} in '
                       'its metainfo, so it cannot be keyed (PackDetInputs '
                       'meta_keys and the data preprocessor set them)')
                if self.fallback == 'error':
                    raise ValueError(msg + "; or set teacher_cache."
                                     "fallback='live'")
                self._say('unkeyed', msg + '. fallback=live: such batches '
                          'run the live teacher')
                self.stats['live_batches'] += 1
                return None
            keys.append(key)
            descs.append(desc)
        ns = self.namespace(d)
        futures = [self._reader.submit(self._read, ns, k) for k in keys]
        return _Ticket(keys, descs, futures)

    @staticmethod
    def path(ns: str, key: str) -> str:
        return osp.join(ns, key[:2], key + '.tce')

    def _read(self, ns: str, key: str):
        try:
            with open(self.path(ns, key), 'rb') as f:
                data = f.read()
        except FileNotFoundError:
            return None
        entry = parse(data, key)
        return entry if entry is not None else 'corrupt'

    # ------------------------------------------------------------ replay
    def teacher_out(self, d, ticket: Optional[_Ticket], inputs: torch.Tensor,
                    data_samples: list, sizes: list,
                    pos: Optional[List[torch.Tensor]]) -> tuple:
        """``(t_outs, score logits)`` for :func:`.dense.dense_kd`: from the
        cache where every needed entry is there, from the live teacher for
        the other images (whose entries are then written).

        ``sizes``: the batch's ``(H, W)`` per level (the student's maps);
        ``pos``: the student's positives (LD) or None. From the cache,
        ``t_outs[0]`` is None (the score logits are the second item) and
        ``t_outs[1]`` holds the box distributions at the positives only.
        """
        from .dense import live_teacher
        self._report_size()
        if ticket is None:
            t_outs = live_teacher(d, inputs, data_samples)
            return t_outs, score_logits(d.family, t_outs)
        t0 = _now()
        entries = [f.result() for f in ticket.futures]
        self.stats['read_wait_s'] += _now() - t0
        B = len(data_samples)
        head = d.student.bbox_head
        A = levels_of(head)[2]
        miss = []
        for i, e in enumerate(entries):
            if e == 'corrupt':
                self.stats['corrupt'] += 1
                self._say('corrupt', 'teacher cache: ignored an invalid '
                          '(truncated / partial / corrupt) entry; it is '
                          'written again', 'INFO')
                entries[i] = e = None
            if e is not None and not self._fits(e, i, sizes, pos, A):
                entries[i] = e = None
            if e is None:
                miss.append(i)
            else:
                self.stats['hits'] += 1
                self.stats['read_bytes'] += e.nbytes
        self.stats['misses'] += len(miss)
        live = None
        if miss:
            sub = inputs if len(miss) == B else inputs[miss]
            sub_samples = [data_samples[i] for i in miss]
            t_outs = live_teacher(d, sub, sub_samples)
            live = (t_outs, score_logits(d.family, t_outs))
            self._write(d, ticket, miss, live, pos, B, A)
            if len(miss) == B:
                return live
        return self._assemble(entries, live, miss, sizes, pos, B, A,
                              inputs.device)

    def _fits(self, e: Entry, i: int, sizes, pos, A: int) -> bool:
        """Whether entry ``e`` of image ``i`` has every level this batch
        needs at its shape, and the LD rows of its current positives."""
        for lvl in self.cls_levels:
            item = e.cls.get(lvl)
            if item is None or tuple(item[0]) != (
                    self.score_channels, ) + tuple(sizes[lvl]):
                return False
        for lvl in self.box_levels:
            item = e.box.get(lvl)
            H, W = sizes[lvl]
            if item is None or item[0][0] != H * W * A:
                return False
            need = pos[lvl].view(len(pos[lvl]) // (H * W * A), -1)[i]
            have = torch.zeros_like(need)
            have[torch.from_numpy(item[1]).to(need.device)] = True
            if bool((need & ~have).any()):
                self.stats['uncovered'] += 1
                self._say('uncovered', "teacher cache: the student's "
                          'positives of an image include locations whose '
                          'box distributions the entry lacks (an assigner '
                          'that depends on the predictions?): the teacher '
                          'runs live for such images', 'INFO')
                return False
        return True

    def _assemble(self, entries, live, miss, sizes, pos, B, A, device):
        """The batch's score maps (and LD maps) from the entries of the
        hits and the live outputs of the misses."""
        where = {i: j for j, i in enumerate(miss)}
        score: List[Optional[torch.Tensor]] = [None] * self.n_levels
        box: List[Optional[torch.Tensor]] = [None] * self.n_levels
        for lvl in self.cls_levels:
            shape = next(e.cls[lvl][0] for e in entries if e is not None)
            out = torch.empty((B, ) + tuple(shape), device=device)
            for i, e in enumerate(entries):
                if e is None:
                    out[i] = live[1][lvl][where[i]]
                    continue
                _, idx, vals = e.cls[lvl]
                dst = out[i].view(-1)
                dst.fill_(e.floor)
                dst[torch.from_numpy(idx).to(device)] = torch.from_numpy(
                    vals).to(device, torch.float32)
            score[lvl] = out
        for lvl in self.box_levels:
            H, W = sizes[lvl]
            D = next(e.box[lvl][0][1] for e in entries if e is not None)
            out = torch.zeros(B, H, W, A * D, device=device)
            for i, e in enumerate(entries):
                if e is None:
                    out[i] = live[0][1][lvl][where[i]].permute(1, 2, 0)
                    continue
                _, rows, vals = e.box[lvl]
                out[i].view(-1, D)[torch.from_numpy(rows).to(device)] = \
                    torch.from_numpy(vals).to(device, torch.float32)
            box[lvl] = out.permute(0, 3, 1, 2)  # the head's layout, a view
        return (None, box), score

    # ------------------------------------------------------------ writes
    def _write(self, d, ticket, miss, live, pos, B, A) -> None:
        """Sparsify the live outputs of the missed images (here) and
        compress + write them (background thread)."""
        ns = self.namespace(d)
        t_outs, t_score = live
        for j, i in enumerate(miss):
            box_bytes, box = 0, [None] * self.n_levels
            for lvl in self.box_levels:
                tb = t_outs[1][lvl][j]
                D = tb.shape[0] // A
                H, W = tb.shape[-2:]
                rows = pos[lvl].view(B, -1)[i].nonzero().squeeze(1)
                vals = tb.permute(1, 2, 0).reshape(H * W * A, D)[rows]
                box[lvl] = ((H * W * A, D), rows.cpu().numpy(),
                            vals.to(torch.float16).cpu().numpy())
                box_bytes += len(rows) * (4 + 2 * D)
            max_values = None if self.max_kb is None else max(
                0, int(self.max_kb * 1024 - box_bytes - 1024) // 4)
            levels = [t_score[lvl][j] if lvl in self.cls_levels else None
                      for lvl in range(self.n_levels)]
            floor, cls = sparsify(levels, self.floor, max_values)
            self._submit(ns, ticket.keys[i], ticket.descs[i], floor, cls,
                         box)

    def _submit(self, ns, key, desc, floor, cls, box) -> None:
        self._pending = [f for f in self._pending if not f.done()]
        while len(self._pending) >= 64:  # bounded memory: wait for one
            self._pending.pop(0).result()
        self._pending.append(self._writer.submit(
            self._write_one, ns, key, desc, floor, cls, box))

    def _write_one(self, ns, key, desc, floor, cls, box) -> None:
        data = serialise(key, desc, floor, cls, box)
        path = self.path(ns, key)
        try:
            os.makedirs(osp.dirname(path), exist_ok=True)
            _atomic_write(path, data)
        except OSError as e:
            with self._lock:
                self.stats['write_errors'] += 1
            self._say('write', f'teacher cache: could not write {path}: {e} '
                      '(training goes on; such images stay misses)')
            return
        cls_bytes = sum(len(c[1]) for c in cls if c is not None)
        with self._lock:
            self.stats['written'] += 1
            self.stats['written_bytes'] += len(data)
            if len(self._first_sizes) < 16:
                self._first_sizes.append((len(data), cls_bytes, floor))

    def flush(self) -> None:
        """Wait for every pending write."""
        for f in self._pending:
            f.result()
        self._pending = []

    def _report_size(self) -> None:
        """Once, when 8 entries are written: their mean size and what
        COCO train2017 with flip would take at that size."""
        if self._size_reported:
            return
        with self._lock:
            sizes = list(self._first_sizes)
        if len(sizes) < 8:
            return
        self._size_reported = True
        mean = sum(s[0] for s in sizes) / len(sizes)
        floors = [1 / (1 + math.exp(-s[2])) for s in sizes]
        coco = 2 * COCO_TRAIN_IMAGES * mean
        print_log(
            f'teacher cache: {mean / 1024:.1f} KiB per entry (an image in '
            f'one form; mean of the first {len(sizes)}), floor p '
            f'{min(floors):.3g}-{max(floors):.3g} (configured '
            f'{self.floor_p:g}); at these image sizes COCO train2017 with '
            f'flip (2 x {COCO_TRAIN_IMAGES} entries) would take '
            f'{coco / 1e9:.1f} GB', logger='current')

    # ------------------------------------------------------------ stats
    def summary(self) -> str:
        s = self.stats
        seen = s['hits'] + s['misses']
        rate = s['hits'] / seen if seen else 0.0
        return (f'teacher cache: {s["hits"]}/{seen} images from the cache '
                f'({100 * rate:.1f} %), {s["written"]} entries written '
                f'({s["written_bytes"] / 2**20:.1f} MiB), '
                f'{s["live_batches"]} batches live, {s["corrupt"]} invalid '
                f'entries replaced, {s["uncovered"]} LD misses, waited '
                f'{s["read_wait_s"]:.2f} s for reads')


def _now() -> float:
    import time
    return time.perf_counter()


def _atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path`` and rename it
    into place: readers see the old file, the new one, or none."""
    tmp = f'{path}.tmp-{os.getpid()}-{threading.get_ident()}'
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


# ---------------------------------------------------------------- hook
@HOOKS.register_module()
class TeacherCacheHook(Hook):
    """Hands the runner's training pipeline to the distiller's teacher
    cache before training (the distiller does not see the config), logs the
    cache's statistics at the end of every epoch (and every
    ``log_interval`` iterations of ``teacher_cache``) and waits for the
    pending writes at the end of training.

    Add it to ``custom_hooks`` with ``teacher_cache`` set on the
    distiller: ``custom_hooks = [dict(type='mmkd.TeacherCacheHook')]``.
    """

    priority = 'VERY_HIGH'

    @staticmethod
    def _cache(runner) -> Optional[TeacherCache]:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        return getattr(model, 'teacher_cache', None)

    def before_train(self, runner) -> None:
        cache = self._cache(runner)
        if cache is None:
            print_log('TeacherCacheHook: the model has no teacher_cache; '
                      'the hook does nothing', logger='current',
                      level=logging.WARNING)
            return
        dataset = runner.cfg.get('train_dataloader', {}).get('dataset')
        cache.set_pipeline(find_pipelines(dataset),
                           'the training pipeline (train_dataloader.dataset)')

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        cache = self._cache(runner)
        if cache is not None and cache.log_interval and \
                self.every_n_train_iters(runner, cache.log_interval):
            print_log(cache.summary(), logger='current')

    def after_train_epoch(self, runner) -> None:
        cache = self._cache(runner)
        if cache is not None and cache.enabled:
            print_log(cache.summary(), logger='current')

    def after_train(self, runner) -> None:
        cache = self._cache(runner)
        if cache is not None:
            cache.flush()
