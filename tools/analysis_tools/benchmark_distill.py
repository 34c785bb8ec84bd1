"""Benchmark what distillation costs over training the student alone.

Every variant's train step is alternated with the plain student's in ONE
process, on the same batch, so the ratios are not skewed by other jobs on
the machine or by process-to-process differences. Each ``--task`` is a
published KD + deep supervision config under ``configs/distill/`` (or any
config given with ``--config``), built with random init (``teacher_ckpt``
and pretrained backbones switched off: nothing is downloaded):

========== =============================================================
row        what one step is
========== =============================================================
student    the plain student (mmdet / mmseg / timm model): ``loss``
           forward + backward + SGD step
kd_fp32    the distiller without deep supervision, teacher in fp32 and
           contiguous memory (``teacher_precision='fp32'``,
           ``teacher_channels_last=False``), same step
kd_fast    the same with the fast teacher: ``teacher_precision='auto'``
           (bf16 where fast, else fp32; ``--teacher-precision`` to force
           bf16 / fp16) and channels-last (the defaults)
kd_ds      KD + deep supervision as the config sets it (its
           ``deep_supervision``), fast teacher
kd_cache   ``kd_fast`` reading the teacher's outputs from a warm
           ``teacher_cache`` (dense detection only; the cache is filled
           before timing, with the config's training pipeline)
ideal      the student's step, then the teacher's bare forward: the
           model alone in the fast precision and memory format, on an
           input converted beforehand, no hooks, no output conversion:
           what a KD step would cost if distillation added nothing but
           the teacher's forward
teacher_*  the teacher's forward alone, as the distiller runs it
           (``teacher_forward``: re-normalisation, cast, no_grad)
========== =============================================================

Each iteration runs every row once, in an order rotated by one per
iteration; the table gives each row's median time and the median of its
per-iteration ratios to the student's step (the ratio targets of the
README are about this one). ``--json FILE`` writes every figure (all step
times included).

Memory: the teacher's weight bytes in fp32 and fast precision (and their
ratio) always; with ``--memory`` each row's peak is measured in a child
process of its own as well (CUDA: ``max_memory_allocated``; CPU: the
growth of the peak RSS over the steps plus the row's weights).

Example: ``python tools/analysis_tools/benchmark_distill.py --task
retinanet pspnet --steps 5 --warmup 1 --json bench.json``
"""
import argparse
import copy
import json
import os
import os.path as osp
import resource
import statistics
import subprocess
import sys
import textwrap
import time

import torch

_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TASKS = dict(
    retinanet=('RetinaNet R101 -> R50', 'configs/distill/det/'
               'kd-ds_retinanet_r101-to-r50_fpn_2x_coco.py'),
    gfl=('GFL R101 -> R50',
         'configs/distill/det/kd-ds_gfl_r101-to-r50_fpn_1x_coco.py'),
    pspnet=('PSPNet R101-d8 -> R18-d8', 'configs/distill/seg/'
            'kd-ds_pspnet_r101-d8-to-r18-d8_4xb4-80k_ade20k-512x512.py'),
    beit=('BEiTv2-B -> ResNet-50', 'configs/distill/cls/'
          'kd-ds_beitv2-b-to-resnet50_a2_in1k.py'),
)
#: image side and batch per kind of task, unless --size / --batch
DEFAULT_INPUT = dict(det=(512, 2), seg=(512, 2), cls=(224, 32))
ROWS = ('student', 'kd_fp32', 'kd_fast', 'kd_ds', 'kd_cache', 'ideal',
        'teacher_fp32', 'teacher_fast')
STEP_ROWS = ROWS[:6]
#: (what, row, limit) checked and printed, never asserted; a row
#: ``'a-b'`` is the median per-iteration difference of the two rows'
#: ratios
TARGETS = dict(
    det=[('KD step / student step', 'kd_fast', 1.15),
         ('KD + DS step / student step', 'kd_ds', 1.30),
         ('KD from the warm teacher cache / student step', 'kd_cache',
          1.10),
         ('KD step - (student step + bare teacher), in student steps',
          'kd_fast-ideal', 0.05)],
    seg=[('KD step / student step', 'kd_fast', 1.30),
         ('KD step - (student step + bare teacher), in student steps',
          'kd_fast-ideal', 0.05)],
    cls=[('KD step - (student step + bare teacher), in student steps',
          'kd_fast-ideal', 0.05)])
WEIGHT_TARGET = 0.55  # fast teacher's weight bytes / fp32 teacher's
MIB = 2**20


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                epilog='Prints one table per task; exit '
                                'code 0 whether the targets pass or not.')
    p.add_argument('--task', nargs='+', choices=list(TASKS),
                   default=['retinanet'], help='published pairs to measure')
    p.add_argument('--config', nargs='+', default=[],
                   help='other distillation configs to measure (instead of '
                   '--task)')
    p.add_argument('--size', type=int, help='image side (default: 512 for '
                   'detection and segmentation, 224 for classification)')
    p.add_argument('--batch', type=int, help='images per batch (default: 2 '
                   'for detection and segmentation, 32 for classification)')
    p.add_argument('--steps', type=int, default=5, help='timed iterations')
    p.add_argument('--warmup', type=int, default=1,
                   help='untimed iterations first')
    p.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    p.add_argument('--teacher-precision', default='auto',
                   choices=['auto', 'bf16', 'fp16', 'fp32'],
                   help="the fast rows' teacher_precision (default: auto, "
                   'bf16 where it is fast; fp32: what auto is on a CPU '
                   'without AMX)')
    p.add_argument('--memory', action='store_true',
                   help="also measure each row's peak memory, one child "
                   'process per row')
    p.add_argument('--json', metavar='FILE', help='write every figure here')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--only', help=argparse.SUPPRESS)  # child: CONFIG::ROW
    return p.parse_args(argv)


# ---------------------------------------------------------------- configs
def _no_downloads(cfg):
    """Drop pretrained weights anywhere in a model config (in place)."""
    if isinstance(cfg, dict):
        if cfg.get('pretrained'):
            cfg['pretrained'] = None
        init = cfg.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            cfg['init_cfg'] = None
        for v in cfg.values():
            _no_downloads(v)
    elif isinstance(cfg, (list, tuple)):
        for v in cfg:
            _no_downloads(v)
    return cfg


def load_distill_cfg(path: str):
    """The config's distiller dict, random init, SyncBN -> BN without
    CUDA; teacher / student given as config paths become inline dicts."""
    from mmengine.config import Config, ConfigDict

    from mmkd.models.distillers.builder import load_model_cfg
    from mmkd.registry import MODELS
    from mmkd.utils import adapt_cfg_to_device
    cfg = Config.fromfile(path if osp.isabs(path) else osp.join(_ROOT, path))
    model = copy.deepcopy(cfg.model)
    cls = MODELS.get(model['type'])
    if cls is None:
        raise KeyError(f'{path}: model.type {model["type"]!r} is not an '
                       'mmkd distiller')
    for name in ('student', 'teacher'):
        spec = model[name]
        if isinstance(spec, str):
            m, scope, _ = load_model_cfg(spec, cls.default_scope)
            spec = ConfigDict(copy.deepcopy(m.to_dict()),
                              _scope_=m.get('_scope_', scope))
        model[name] = _no_downloads(spec)
    model.update(teacher_ckpt=None)
    for key in ('student_ckpt', 'init_cfg'):
        model.pop(key, None)
    full = Config(dict(model=model))
    adapt_cfg_to_device(full)
    return full.model, cls


def task_kind(cls) -> str:
    from mmkd.models import DetectionDistiller, SegmentationDistiller
    return 'det' if issubclass(cls, DetectionDistiller) else \
        'seg' if issubclass(cls, SegmentationDistiller) else 'cls'


# ---------------------------------------------------------------- batches
def fake_batch(kind, size, batch, seed, device):
    """One batch of random images with random labels for ``kind``."""
    from mmengine.structures import BaseDataElement, InstanceData, PixelData
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, size, size, generator=g)
    samples = []
    for i in range(batch):
        if kind == 'det':
            from mmdet.structures import DetDataSample
            xy = torch.rand(3, 2, generator=g) * size * 0.6
            wh = torch.rand(3, 2, generator=g) * size * 0.35 + 4
            s = DetDataSample(metainfo=dict(
                img_path=f'fake/{seed}_{i}.jpg', img_id=i,
                ori_shape=(size, size), img_shape=(size, size),
                pad_shape=(size, size), batch_input_shape=(size, size),
                scale_factor=(1.0, 1.0), flip=False, flip_direction=None))
            s.gt_instances = InstanceData(
                bboxes=torch.cat([xy, (xy + wh).clamp(max=size)], 1),
                labels=torch.randint(0, 6, (3, ), generator=g))
        elif kind == 'seg':
            from mmseg.structures import SegDataSample
            s = SegDataSample(metainfo=dict(img_shape=(size, size),
                                            pad_shape=(size, size)))
            s.gt_sem_seg = PixelData(
                data=torch.randint(0, 6, (1, size, size), generator=g))
        else:
            s = BaseDataElement(
                gt_label=torch.randint(0, 6, (1, ), generator=g))
        samples.append(s.to(device))
    return x.to(device), samples


# ---------------------------------------------------------------- models
def teacher_fn(distiller, kind, model=None):
    """What the distiller runs on its teacher (``teacher_forward``'s
    ``fn``): ``extract_feat`` + the head's forward, or timm's logits; on
    ``model`` instead of the distiller's teacher if given."""
    t = distiller.teacher if model is None else model
    if kind == 'det':
        if hasattr(t, 'roi_head'):  # two-stage: the RPN's features only
            return t.extract_feat
        return lambda x: t.bbox_head(t.extract_feat(x))
    if kind == 'seg':
        from mmkd.models.distillers.segmentation import final_logits
        return lambda x: final_logits(t, t.extract_feat(x))
    return lambda x: t(x, mode='tensor')


def _train_pipelines(path):
    """The training pipeline(s) of the config at ``path`` (the cache row
    checks and hashes them as a run's ``TeacherCacheHook`` would)."""
    from mmengine.config import Config

    from mmkd.models.distillers.detection.teacher_cache import find_pipelines
    cfg = Config.fromfile(path if osp.isabs(path) else osp.join(_ROOT, path))
    dataset = cfg.get('train_dataloader', {}).get('dataset')
    return find_pipelines(dataset) if dataset else []


_CACHE_DIRS = []


def _cache_dir():
    """A temporary teacher-cache folder, removed when the process ends."""
    import atexit
    import shutil
    import tempfile
    if not _CACHE_DIRS:
        _CACHE_DIRS.append(tempfile.mkdtemp(prefix='mmkd-bench-cache-'))
        atexit.register(shutil.rmtree, _CACHE_DIRS[0], True)
    return _CACHE_DIRS[0]


def build_rows(path, device, rows=ROWS, precision='auto'):
    """Models and step functions of ``rows`` for the config at ``path``:
    every student starts from the same weights, every teacher from the
    same (random) weights. ``kd_cache`` is left out (said on stderr) where
    the distiller cannot cache (not dense detection, a random pipeline)."""
    from mmengine.registry import DefaultScope

    from mmkd.models.distillers.builder import build_model
    cfg, cls = load_distill_cfg(path)
    kind = task_kind(cls)
    rows = [r for r in rows if r != 'kd_cache' or kind == 'det']
    kd_cfg = copy.deepcopy(cfg)
    kd_cfg.pop('deep_supervision', None)
    variants = dict(
        kd_fp32=dict(kd_cfg, teacher_precision='fp32',
                     teacher_channels_last=False),
        kd_fast=dict(kd_cfg, teacher_precision=precision,
                     teacher_channels_last=True),
        kd_ds=dict(cfg, teacher_precision=precision,
                   teacher_channels_last=True))
    if 'kd_cache' in rows:
        variants['kd_cache'] = dict(
            kd_cfg, teacher_precision=precision, teacher_channels_last=True,
            teacher_cache=dict(dir=_cache_dir(),
                               pipeline=_train_pipelines(path)))
    need = set(rows) | {'kd_fp32'}  # kd_fp32's weights seed the others
    need |= {'kd_fast'} if {'teacher_fast', 'ideal'} & set(rows) else set()
    torch.manual_seed(0)
    models = {}
    with DefaultScope.overwrite_default_scope('mmkd'):
        from mmkd.registry import MODELS
        # kd_cache last: the others draw their random init as before
        for name in ('kd_fp32', 'kd_fast', 'kd_ds', 'kd_cache'):
            if name not in need:
                continue
            try:
                models[name] = MODELS.build(variants[name])
            except ValueError as e:
                if name != 'kd_cache':
                    raise
                print(f'kd_cache row left out: {e}', file=sys.stderr)
                rows.remove(name)
                continue
            models[name].init_weights()
    ref = models['kd_fp32']
    ref.teacher.init_weights()  # not a child: init it for sane logits
    for name, d in models.items():
        if d is not ref:
            d.student.load_state_dict(ref.student.state_dict())
            d.teacher.load_state_dict(ref.teacher.state_dict())
    if {'student', 'ideal'} & set(rows):
        models['student'] = build_model(cfg['student'], cls.default_scope)
        models['student'].load_state_dict(ref.student.state_dict())
    for name, d in models.items():
        if name != 'student':  # as the first forward would, on the device
            d.to(device)
            d.teacher_runner.prepare()
    steps, weights = {}, {}
    for name in rows:
        if name.startswith('teacher_'):
            d = models['kd_' + name.split('_')[1]]
            steps[name] = _teacher_step(d, teacher_fn(d, kind))
            weights[name] = weight_bytes([d.teacher])
        elif name == 'ideal':
            fast = models['kd_fast']
            bare = build_model(cfg['teacher'], cls.default_scope)
            bare.load_state_dict(ref.teacher.state_dict())
            bare.eval().requires_grad_(False).to(device,
                                                 dtype=fast.teacher_dtype)
            if fast.teacher_runner.channels_last:
                bare.to(memory_format=torch.channels_last)
            models['bare_teacher'] = bare
            student = models['student'].train().to(device)
            steps[name] = _ideal_step(_train_step(student), fast,
                                      teacher_fn(fast, kind, bare), kind)
            weights[name] = weight_bytes([student, bare])
        else:
            model = models[name].train().to(device)
            steps[name] = _train_step(model)
            weights[name] = weight_bytes(
                [model] + ([] if name == 'student' else [model.teacher]))
    for name, d in models.items():
        if name != 'bare_teacher':
            d.to(device)
    labels = dict(
        student='student-only train step',
        kd_fp32='KD, fp32 teacher',
        kd_fast=f'KD, {_fmt(models.get("kd_fast"))} teacher',
        kd_ds=f'KD + deep supervision, {_fmt(models.get("kd_ds"))} '
        'teacher',
        kd_cache='KD from a warm teacher cache',
        ideal='student step + bare teacher forward, '
        f'{_fmt(models.get("kd_fast"))}',
        teacher_fp32='teacher forward, fp32',
        teacher_fast=f'teacher forward, {_fmt(models.get("kd_fast"))}')
    return steps, weights, {r: labels[r] for r in rows}, kind, models


def _fmt(d):
    if d is None:
        return '-'
    dtype = str(d.teacher_dtype).replace('torch.', '').replace(
        'bfloat16', 'bf16').replace('float32', 'fp32').replace(
            'float16', 'fp16')
    return dtype + (' + channels-last' if d.teacher_runner.channels_last
                    else '')


def _train_step(model):
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                          lr=1e-4, momentum=0.9)

    def step(x, samples):
        loss, _ = model.parse_losses(model(x, samples, mode='loss'))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def _teacher_step(distiller, fn):

    def step(x, samples):
        distiller.teacher_forward(fn, x)
    return step


def _ideal_step(student_step, fast, fn, kind):
    """The student's step, then ``fn`` (the bare teacher's forward) under
    ``no_grad`` on the batch as ``fast``'s teacher sees it, converted once
    outside the timed steps (re-normalised, its dtype and memory format).
    No autocast unless the bare model fails without it."""
    dtype = fast.teacher_dtype
    cl = fast.teacher_runner.channels_last
    prepared, state = {}, dict(autocast=False)

    def step(x, samples):
        student_step(x, samples)
        if id(x) not in prepared:
            prepared.clear()
            xt = fast.teacher_inputs(
                x, samples if kind != 'cls' else None)
            fmt = torch.channels_last if cl and xt.dim() == 4 \
                else torch.preserve_format
            prepared[id(x)] = xt.to(dtype=dtype, memory_format=fmt)
        xt = prepared[id(x)]
        with torch.no_grad():
            if not state['autocast']:
                try:
                    fn(xt)
                    return
                except RuntimeError:  # a model that needs autocast
                    state['autocast'] = True
            with torch.autocast(xt.device.type, dtype=dtype):
                fn(xt)
    return step


def weight_bytes(models):
    seen, total = set(), 0
    for m in models:
        for t in list(m.parameters()) + list(m.buffers()):
            if id(t) not in seen:
                seen.add(id(t))
                total += t.numel() * t.element_size()
    return total


# ---------------------------------------------------------------- timing
def interleaved(path, args, device):
    """Time every row alternated in this process; return the results."""
    steps, weights, labels, kind, models = build_rows(
        path, device, precision=args.teacher_precision)
    size, batch = (args.size or DEFAULT_INPUT[kind][0],
                   args.batch or DEFAULT_INPUT[kind][1])
    x, samples = fake_batch(kind, size, batch, args.seed, device)
    cache = models['kd_cache'].teacher_cache if 'kd_cache' in steps \
        else None
    if cache is not None:  # fill it: every timed step reads it
        with torch.no_grad():
            models['kd_cache'].loss(x, samples)
        cache.flush()
    rows = list(steps)
    times = {r: [] for r in rows}
    cpu = {r: [] for r in rows}
    load = [os.getloadavg()[0]]
    for i in range(args.warmup + args.steps):
        k = i % len(rows)
        for r in rows[k:] + rows[:k]:
            if device.type == 'cuda':
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), time.process_time()
            steps[r](x, samples)
            if device.type == 'cuda':
                torch.cuda.synchronize()
            if i >= args.warmup:
                times[r].append(time.perf_counter() - t0)
                cpu[r].append(time.process_time() - c0)
        load.append(os.getloadavg()[0])
    res = dict(config=path, kind=kind, size=size, batch=batch,
               device=_where(device), steps=args.steps, warmup=args.warmup,
               load_average_1min=load, rows={})
    if cache is not None:
        res['teacher_cache'] = dict(cache.stats, summary=cache.summary())
    res['differences'] = {}
    for what, row, _ in TARGETS[kind]:
        if '-' in row:
            a, b = row.split('-')
            if a in times and b in times:
                res['differences'][row] = statistics.median([
                    (ta - tb) / ts for ta, tb, ts in zip(
                        times[a], times[b], times['student'])])
    for r in rows:
        ratios = [t / s for t, s in zip(times[r], times['student'])]
        cpu_ratios = [t / s for t, s in zip(cpu[r], cpu['student'])]
        res['rows'][r] = dict(
            label=labels[r], times_ms=[1e3 * t for t in times[r]],
            median_ms=1e3 * statistics.median(times[r]),
            ratio=statistics.median(ratios),
            cpu_ms=[1e3 * t for t in cpu[r]],
            cpu_ratio=statistics.median(cpu_ratios),
            weight_bytes=weights[r])
    t32, tf = res['rows']['teacher_fp32'], res['rows']['teacher_fast']
    res['teacher_weight_bytes'] = dict(
        fp32=t32['weight_bytes'], fast=tf['weight_bytes'],
        ratio=tf['weight_bytes'] / t32['weight_bytes'])
    res['teacher_dtype'] = str(models['kd_fast'].teacher_dtype)
    return res


def _where(device):
    if device.type == 'cuda':
        return torch.cuda.get_device_name(device)
    return f'cpu, {torch.get_num_threads()} threads'


# ---------------------------------------------------------------- memory
def measure_memory(path, row, args, device):
    """Peak memory of ``row``'s step, measured alone in this process."""
    import psutil
    steps, weights, _, kind, models = build_rows(
        path, device, rows=(row, ), precision=args.teacher_precision)
    x, samples = fake_batch(kind, args.size or DEFAULT_INPUT[kind][0],
                            args.batch or DEFAULT_INPUT[kind][1], args.seed,
                            device)
    if row == 'kd_cache':  # warm: the fill is not what the row measures
        with torch.no_grad():
            models['kd_cache'].loss(x, samples)
        models['kd_cache'].teacher_cache.flush()
    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        base = psutil.Process().memory_info().rss
        try:  # Linux: reset the high-water mark that ru_maxrss reports
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')
        except OSError:
            print('warning: could not reset the peak RSS', file=sys.stderr)
    for _ in range(args.warmup + 1):
        steps[row](x, samples)
    if device.type == 'cuda':
        return dict(peak=torch.cuda.max_memory_allocated())
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return dict(growth=maxrss - base, peak=maxrss - base + weights[row])


def memory_rows(path, argv, rows=ROWS):
    out = {}
    for row in rows:
        print(f'memory: {row} ...', file=sys.stderr, flush=True)
        cmd = [sys.executable, osp.abspath(__file__), *argv, '--only',
               f'{path}::{row}']
        proc = subprocess.run(cmd, capture_output=True, text=True)
        for line in proc.stdout.splitlines():
            if line.startswith('BENCH_MEMORY '):
                out[row] = json.loads(line[len('BENCH_MEMORY '):])
                break
        else:
            sys.exit(f'memory of {row!r} failed (exit {proc.returncode}):\n'
                     + (proc.stdout + proc.stderr)[-4000:])
    return out


# ---------------------------------------------------------------- report
def report(title, res, memory=None):
    print(f'\n{title}: {res["size"]}x{res["size"]}, batch {res["batch"]}, '
          f'random init, {res["device"]}; {res["steps"]} iterations after '
          f'{res["warmup"]} warm-up, every row alternated in one process on '
          'the same batch; load average (1 min) '
          f'{min(res["load_average_1min"]):.1f}-'
          f'{max(res["load_average_1min"]):.1f}')
    width = max(44, *(len(v['label']) for v in res['rows'].values()))
    head = (f'{"row":{width}s} {"median ms":>10s} {"x student":>9s} '
            f'{"CPU x student":>13s}')
    if memory:
        head += f' {"peak MiB":>9s}'
    print(head + '\n' + '-' * len(head))
    for r, v in res['rows'].items():
        line = (f'{v["label"]:{width}s} {v["median_ms"]:10.1f} '
                f'{v["ratio"]:9.3f} {v["cpu_ratio"]:13.3f}')
        if memory:
            line += f' {memory[r]["peak"] / MIB:9.1f}'
        print(line)
    print(textwrap.fill(
        'x student: median over iterations of (row step time / student step '
        'time in the same iteration); CPU: the same with process CPU time '
        '(all threads), less sensitive to other jobs on the machine.', 79))
    w = res['teacher_weight_bytes']
    print(f'teacher weights (params + buffers): fp32 {w["fp32"] / MIB:.1f} '
          f'MiB, {res["teacher_dtype"]} {w["fast"] / MIB:.1f} MiB')
    if 'teacher_cache' in res:
        print(res['teacher_cache']['summary'] + ' (the fill before timing '
              'included)')
    if memory:
        note = ('peak = torch.cuda.max_memory_allocated() over the steps of '
                'the row alone' if 'growth' not in memory['student'] else
                "peak = growth of the peak RSS over the row's steps, alone "
                "in a child process, plus the row's weights")
        print(textwrap.fill(note, 79))
    checks = []
    for what, row, limit in TARGETS[res['kind']]:
        if row in res['rows']:
            checks.append((what, res['rows'][row]['ratio'], limit))
        elif row in res['differences']:
            checks.append((what, res['differences'][row], limit))
    checks.append(('teacher weights fast / fp32', w['ratio'], WEIGHT_TARGET))
    res['targets'] = []
    for what, value, limit in checks:
        ok = value <= limit
        res['targets'].append(dict(what=what, value=value, limit=limit,
                                   passed=ok))
        print(f'{what:{width}s} = {value:.3f} (target <= {limit:.2f}) '
              f'{"PASS" if ok else "MISS"}')


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    import mmkd  # noqa: F401  (registers mmkd's modules)
    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel('WARNING')  # init noise
    device = torch.device(args.device)
    if args.only:
        path, row = args.only.rsplit('::', 1)
        print('BENCH_MEMORY ' +
              json.dumps(measure_memory(path, row, args, device)))
        return
    if device.type == 'cuda' and not torch.cuda.is_available():
        sys.exit('--device cuda: CUDA is not available')
    jobs = [(c, c) for c in args.config] or [TASKS[t] for t in args.task]
    results = []
    for title, path in jobs:
        print(f'measuring {title} ...', file=sys.stderr, flush=True)
        res = interleaved(path, args, device)
        memory = memory_rows(path, argv, list(res['rows'])) \
            if args.memory else None
        if memory:
            res['memory'] = memory
        report(title, res, memory)
        res['title'] = title
        results.append(res)
        if args.json:  # after every task: a long run keeps what it has
            with open(args.json, 'w') as f:
                json.dump(dict(argv=argv, results=results), f, indent=1)


if __name__ == '__main__':
    main()
