"""Benchmark what distillation costs over training the student alone.

``--task det`` (default): RetinaNet R101 (teacher) -> R50 (student), mmdet's
own configs. ``--task seg``: PSPNet R101-d8 -> R18-d8 (ADE20K configs, mmkd's
R18 student config). Random init (nothing downloaded), one fake batch
(random images with a few random gt boxes, or a random label map) used by
every row. Rows, each run in its own child process:

* student-only train step: plain mmdet student, ``loss`` mode forward +
  backward + SGD step;
* distillation train step: :class:`DetectionDistiller` with
  ``distill=dict(cls=dict(type='mmkd.SigmoidKDLoss'))``, same step
  (``--deep-supervision`` adds a row with ``deep_supervision=dict(stages=[1,
  2])``);
* teacher forward: what the distiller runs, ``extract_feat`` + ``bbox_head``
  under ``no_grad`` in eval mode.

Each row reports the median time of ``--steps`` steps after ``--warmup``
steps, and its peak memory (its meaning per device is printed with the
table). Then two targets are checked and printed, never asserted:

* time: distillation step <= 1.05 x (student step + teacher forward);
* memory: distillation peak <= 1.10 x (student peak + teacher weight bytes).

Example: ``python tools/analysis_tools/benchmark_distill.py --steps 3``
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import textwrap
import time

import torch

ROWS = dict(student='student-only train step',
            distill='distillation train step',
            distill_ds='distillation + deep supervision [1, 2]',
            teacher='teacher forward (no_grad, eval)')
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
TASKS = dict(
    det=dict(
        title='RetinaNet R101 -> R50',
        scope='mmdet',
        student='mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
        teacher='mmdet::retinanet/retinanet_r101_fpn_1x_coco.py'),
    seg=dict(
        title='PSPNet R101-d8 -> R18-d8',
        scope='mmseg',
        student=os.path.join(
            _ROOT, 'configs/distill/seg/'
            'pspnet_r18-d8_4xb4-80k_ade20k-512x512.py'),
        teacher='mmseg::pspnet/pspnet_r101-d8_4xb4-80k_ade20k-512x512.py'),
)
MIB = 2**20
NOTES = dict(
    cuda='peak = torch.cuda.max_memory_allocated() over the warm-up and timed '
    'steps, reset_peak_memory_stats() called once the models and the batch '
    "were on the GPU: the row's weights, gradients, optimizer state and "
    'activations.',
    cpu='RSS growth = peak RSS (getrusage ru_maxrss) over the warm-up and '
    'timed steps minus the RSS right after the models were built (the '
    "high-water mark is reset there). peak = RSS growth + the row's weights "
    "(params + buffers), so that it counts what CUDA's peak counts. CPU s = "
    'median process CPU time per step, all threads: less sensitive than '
    'wall time to other jobs on the machine.')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                epilog='Prints one table; exit code 0 '
                                'whether the targets pass or not.')
    p.add_argument('--task', choices=list(TASKS), default='det',
                   help='det: RetinaNet R101 -> R50; seg: PSPNet R101-d8 -> '
                   'R18-d8')
    p.add_argument('--size', type=int, default=512, help='image side')
    p.add_argument('--batch', type=int, default=2, help='images per batch')
    p.add_argument('--steps', type=int, default=10, help='timed steps')
    p.add_argument('--warmup', type=int, default=3, help='untimed steps first')
    p.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    p.add_argument('--deep-supervision', action='store_true',
                   help='add a distillation row with deep supervision on '
                   'backbone stages 1 and 2')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--only', choices=list(ROWS), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def fake_batch(args, device, boxes_per_image=3):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(args.seed)
    s = args.size
    x = torch.randn(args.batch, 3, s, s, generator=g)
    samples = []
    for _ in range(args.batch):
        xy = torch.rand(boxes_per_image, 2, generator=g) * s * 0.6
        wh = torch.rand(boxes_per_image, 2, generator=g) * s * 0.35 + 16
        sample = DetDataSample(metainfo=dict(
            img_shape=(s, s), pad_shape=(s, s), batch_input_shape=(s, s),
            scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(
            bboxes=torch.cat([xy, (xy + wh).clamp(max=s)], 1),
            labels=torch.randint(0, 80, (boxes_per_image, ), generator=g))
        samples.append(sample.to(device))
    return x.to(device), samples


def fake_seg_batch(args, device):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    g = torch.Generator().manual_seed(args.seed)
    s = args.size
    x = torch.randn(args.batch, 3, s, s, generator=g)
    samples = []
    for _ in range(args.batch):
        sample = SegDataSample(metainfo=dict(img_shape=(s, s),
                                             pad_shape=(s, s)))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, 150, (1, s, s), generator=g))
        samples.append(sample.to(device))
    return x.to(device), samples


def _model_cfgs(task):
    """Student and teacher model configs, SyncBN -> BN without CUDA."""
    from mmengine.config import Config
    from mmengine.hub import get_config

    from mmkd.utils import adapt_cfg_to_device
    cfgs = {}
    for name in ('student', 'teacher'):
        path = TASKS[task][name]
        model = (get_config(path) if '::' in path else
                 Config.fromfile(path)).model
        if 'init_cfg' in model.backbone:
            model.backbone.init_cfg = None
        model.pop('pretrained', None)
        cfg = Config(dict(model=model))
        adapt_cfg_to_device(cfg)
        cfgs[name] = cfg.model
    return cfgs


def build_row(row, args, device):
    """Build the models of ``row``; return (step function, its models)."""
    from mmengine.registry import MODELS, init_default_scope

    from mmkd.models import DetectionDistiller, SegmentationDistiller
    det = args.task == 'det'
    init_default_scope(TASKS[args.task]['scope'])
    cfgs = _model_cfgs(args.task)
    torch.manual_seed(args.seed)
    x, samples = (fake_batch if det else fake_seg_batch)(args, device)
    if row == 'teacher':
        teacher = MODELS.build(cfgs['teacher'])
        teacher.init_weights()
        teacher.requires_grad_(False)
        teacher.eval().to(device)
        head = teacher.bbox_head if det else teacher.decode_head

        def step():
            with torch.no_grad():
                head(teacher.extract_feat(x))
        return step, [teacher]
    if row == 'student':
        model = MODELS.build(cfgs['student'])
        model.init_weights()
        models = [model]
    else:
        ds = dict(stages=[1, 2]) if row == 'distill_ds' else None
        if det:
            model = DetectionDistiller(
                student=cfgs['student'], teacher=cfgs['teacher'],
                distill=dict(cls=dict(type='mmkd.SigmoidKDLoss')),
                deep_supervision=ds)
        else:
            model = SegmentationDistiller(
                student=cfgs['student'], teacher=cfgs['teacher'],
                distill=dict(logits=dict(type='mmkd.PixelKDLoss')),
                deep_supervision=ds)
        model.init_weights()
        model.teacher.init_weights()  # not a child: init it for sane logits
        models = [model, model.teacher]
    model.train().to(device)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                          lr=0.01, momentum=0.9, weight_decay=1e-4)

    def step():
        loss, _ = model.parse_losses(model(x, samples, mode='loss'))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step, models


def weight_bytes(models):
    return sum(t.numel() * t.element_size() for m in models
               for t in list(m.parameters()) + list(m.buffers()))


def measure(row, args):
    """Run one row in this process; return a dict of its results."""
    import mmkd  # noqa: F401  (registers mmkd's modules)
    import psutil
    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel('WARNING')  # init_weights noise
    device = torch.device(args.device)
    step, models = build_row(row, args, device)
    cuda = device.type == 'cuda'
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        base = psutil.Process().memory_info().rss
        try:  # Linux: reset the high-water mark that ru_maxrss reports
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')
        except OSError:
            print('warning: could not reset the peak RSS; building the models '
                  'may have set it', file=sys.stderr)
    times, cpu_times = [], []
    for i in range(args.warmup + args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        if cuda:
            torch.cuda.synchronize()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
    res = dict(row=row, ms=1e3 * statistics.median(times),
               cpu_s=statistics.median(cpu_times),
               weights=weight_bytes(models))
    if cuda:
        res['peak'] = torch.cuda.max_memory_allocated()
    else:
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        res['growth'] = maxrss - base
        res['peak'] = res['growth'] + res['weights']
    return res


def run_child(row, argv):
    cmd = [sys.executable, os.path.abspath(__file__), *argv, '--only', row]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith('BENCH_RESULT '):
            return json.loads(line[len('BENCH_RESULT '):])
    sys.exit(f'row {row!r} failed (exit {proc.returncode}):\n'
             + (proc.stdout + proc.stderr)[-4000:])


def main():
    argv = sys.argv[1:]
    args = parse_args(argv)
    if args.only:
        print('BENCH_RESULT ' + json.dumps(measure(args.only, args)))
        return
    if args.device == 'cuda' and not torch.cuda.is_available():
        sys.exit('--device cuda: CUDA is not available')
    rows = ['student', 'distill'] + (['distill_ds'] if args.deep_supervision
                                     else []) + ['teacher']
    res = {}
    for row in rows:
        print(f'measuring: {ROWS[row]} ...', file=sys.stderr, flush=True)
        res[row] = run_child(row, argv)
    cpu = args.device == 'cpu'
    where = (f'cpu, {torch.get_num_threads()} threads' if cpu else
             torch.cuda.get_device_name())
    print(f'\n{TASKS[args.task]["title"]}, {args.size}x{args.size}, batch '
          f'{args.batch}, random init, {where}; median of {args.steps} '
          f'steps after {args.warmup} warm-up, one child process per row, '
          f'same fake batch (seed {args.seed})')
    head = f'{"row":40s} {"median ms":>10s} {"peak MiB":>9s}'
    if cpu:
        head += f' {"RSS growth MiB":>15s} {"CPU s":>7s}'
    print(head + '\n' + '-' * len(head))
    for row in rows:
        r = res[row]
        line = f'{ROWS[row]:40s} {r["ms"]:10.1f} {r["peak"] / MIB:9.1f}'
        if cpu:
            line += f' {r["growth"] / MIB:15.1f} {r["cpu_s"]:7.2f}'
        print(line)
    t_w = res['teacher']['weights']
    print(f'teacher weights (params + buffers): {t_w / MIB:.1f} MiB')
    print(textwrap.fill(f'{args.device}: {NOTES[args.device]}', 79))
    s, d, t = res['student'], res['distill'], res['teacher']
    checks = [
        ('time', 'distill step / (student step + teacher forward)',
         d['ms'] / (s['ms'] + t['ms']), 1.05),
        ('memory', 'distill peak / (student peak + teacher weights)',
         d['peak'] / (s['peak'] + t_w), 1.10),
    ]
    print()
    for name, what, ratio, limit in checks:
        verdict = 'PASS' if ratio <= limit else 'FAIL'
        print(f'{name:7s} {what:50s} = {ratio:.3f} (target <= {limit:.2f}) '
              f'{verdict}')


if __name__ == '__main__':
    main()
