"""Train and evaluate through ``tools/train.py``.

Each run is a subprocess, as a user's run: it has its own folder holding the
config it ran (``config.py``), the tool's console output (``train.log``),
mmengine's own logs and checkpoints, and once it is finished
``result.json`` (the metrics of its validation at the end of training). A
run whose ``result.json`` matches its config is not run again; an
interrupted training run whose config did not change resumes from its last
checkpoint (``--resume``).
"""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Optional, Tuple

from mmengine.config import Config

from .configs import StudyError, config_hash

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
RESULT = 'result.json'


def _tool(script: str, args: list, log: str, cwd: str) -> None:
    """Run ``tools/<script>`` with its output going to ``log``."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [ROOT] + [p for p in [env.get('PYTHONPATH')] if p])
    cmd = [sys.executable, osp.join(ROOT, 'tools', script), *map(str, args)]
    with open(log, 'a') as f:
        f.write('$ ' + ' '.join(cmd) + '\n')
        f.flush()
        code = subprocess.run(cmd, cwd=cwd, env=env, stdout=f,
                              stderr=subprocess.STDOUT).returncode
    if code != 0:
        with open(log) as f:
            tail = ''.join(f.readlines()[-25:])
        raise StudyError(f'tools/{script} failed (exit {code}); its log is '
                         f'{log}; last lines:\n{tail}')


def read_result(run_dir: str) -> Optional[dict]:
    """The run's ``result.json``, or None if the run is not finished."""
    path = osp.join(run_dir, RESULT)
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def final_metrics(run_dir: str) -> dict:
    """The metrics of the run's last validation, from mmengine's scalar log
    (``<run_dir>/<timestamp>/vis_data/scalars.json``, the newest run)."""
    for log in sorted(glob.glob(osp.join(run_dir, '*', 'vis_data',
                                         'scalars.json')),
                      key=osp.getmtime, reverse=True):
        with open(log) as f:
            records = [json.loads(line) for line in f if line.strip()]
        # training records carry the learning rate and the losses
        val = [r for r in records if 'lr' not in r
               and not any(k.startswith('loss') for k in r)]
        if val:
            return {k: v for k, v in val[-1].items()
                    if k not in ('step', 'time', 'data_time')}
    raise StudyError(f'{run_dir}: no validation result in mmengine\'s logs '
                     '(<timestamp>/vis_data/scalars.json)')


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint named by mmengine's ``last_checkpoint`` file."""
    path = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(path):
        raise StudyError(f'{work_dir}: training left no last_checkpoint')
    with open(path) as f:
        return f.read().strip()


def train_and_evaluate(cfg: Config, run_dir: str, distilled: bool,
                       cwd: str) -> Tuple[dict, bool]:
    """Train ``cfg`` in ``run_dir``; its score is the validation at the end
    of training (of the student, for a distiller).

    Args:
        cfg (Config): The run's full config (see ``configs.for_study``).
        run_dir (str): The run's folder (its ``--work-dir``).
        distilled (bool): Whether ``cfg`` is a distillation config: its
            student-only export (``student_config.py`` +
            ``student_final.pth``, by ``mmkd.StudentCheckpointHook``) is
            recorded as the run's model.
        cwd (str): Working directory of the tools (relative data paths).

    Returns:
        tuple: The result (``metrics``, the model's ``config`` and
        ``checkpoint``, ``seconds``, ``config_hash``) and whether it was
        computed now (False: reused from an earlier invocation).
    """
    key = config_hash(cfg)
    done = read_result(run_dir)
    if done is not None and done.get('config_hash') == key:
        return done, False
    os.makedirs(run_dir, exist_ok=True)
    config = osp.join(run_dir, 'config.py')
    resume = False
    if osp.isfile(config) and osp.isfile(
            osp.join(run_dir, 'last_checkpoint')):
        resume = config_hash(Config.fromfile(
            config, import_custom_modules=False)) == key
    cfg.dump(config)
    start = time.time()
    _tool('train.py', [config, '--work-dir', run_dir] +
          (['--resume'] if resume else []), osp.join(run_dir, 'train.log'),
          cwd)
    if distilled:
        model_cfg = osp.join(run_dir, 'student_config.py')
        ckpt = osp.join(run_dir, 'student_final.pth')
    else:
        model_cfg, ckpt = config, last_checkpoint(run_dir)
    result = dict(metrics=final_metrics(run_dir),
                  config=osp.abspath(model_cfg),
                  checkpoint=osp.abspath(ckpt),
                  seconds=round(time.time() - start, 1), config_hash=key)
    with open(osp.join(run_dir, RESULT + '.tmp'), 'w') as f:
        json.dump(result, f, indent=1)
    os.replace(osp.join(run_dir, RESULT + '.tmp'), osp.join(run_dir, RESULT))
    return result, True


def teacher_dir(cfg: Config, cache_dir: str, name: str) -> str:
    """The cache folder of a teacher: its config name and config hash (the
    seed and every option are part of the hashed config)."""
    return osp.join(cache_dir, f'{name}-{config_hash(cfg)}')


def fmt_seconds(seconds: float) -> str:
    """``42 s`` / ``3 min 5 s`` / ``1 h 2 min``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f'{seconds} s'
    if seconds < 3600:
        return f'{seconds // 60} min {seconds % 60} s'
    return f'{seconds // 3600} h {seconds % 3600 // 60} min'


class Progress:
    """One console line per run: which run, how many left, an ETA (the mean
    time of the runs computed in this invocation times the runs left)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.finished = 0
        self.spent = []
        self.start = time.time()

    def begin(self, label: str) -> None:
        print(f'[{self.finished + 1}/{self.total}] {label:<34}', end=' ',
              flush=True)

    def end(self, text: str, seconds: Optional[float]) -> None:
        self.finished += 1
        if seconds is not None:
            self.spent.append(seconds)
        left = self.total - self.finished
        took = 'done before' if seconds is None else fmt_seconds(seconds)
        eta = ''
        if left and self.spent:
            mean = sum(self.spent) / len(self.spent)
            eta = f', ETA {fmt_seconds(left * mean)}'
        print(f'{text}  ({took}; {left} left{eta})', flush=True)

    def fail(self) -> None:
        print('FAILED', flush=True)
