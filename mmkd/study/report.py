"""A study's numbers: mean ± std per arm and fraction, paired gains,
table, plot.

``std`` is the sample standard deviation (``ddof=1``) over seeds. Arms are
paired by seed (same seed = same student initialisation and batches), so the
gain of an arm over the baseline is the mean over seeds of the per-seed
difference ``arm(seed) - baseline(seed)``, reported with its standard error
``std(diffs, ddof=1) / sqrt(n)`` and the wins ``k of n`` (seeds where the arm
scored higher). A gain inside two standard errors is not a gain.
"""
import math
from typing import List, Optional, Sequence

import numpy as np


def _stats(values: Sequence[float]) -> tuple:
    values = np.asarray(values, dtype=float)
    std = float(values.std(ddof=1)) if len(values) > 1 else math.nan
    return float(values.mean()), std


def summarize(runs: List[dict], arms: Sequence[str],
              fractions: Sequence[float]) -> List[dict]:
    """One row per (fraction, arm) with the runs' study metric.

    Args:
        runs (list[dict]): Run records (``arm``, ``fraction``, ``seed``,
            ``value``).
        arms (Sequence[str]): Arms, in table order.
        fractions (Sequence[float]): Train fractions, in table order.

    Returns:
        list[dict]: ``fraction``, ``arm``, ``n``, ``values``, ``seeds``,
        ``mean``, ``std`` and, for arms other than the baseline when it is
        in the study, the paired ``gain`` (mean of the per-seed
        differences over the seeds both ran), its standard error
        ``gain_se``, ``wins`` and ``pairs``.
    """
    rows = []
    for fraction in fractions:
        base = None
        for arm in arms:
            found = sorted((r['seed'], r['value']) for r in runs
                           if r['arm'] == arm and r['fraction'] == fraction)
            if not found:
                continue
            values = [v for _, v in found]
            mean, std = _stats(values)
            row = dict(fraction=fraction, arm=arm, n=len(values),
                       seeds=[s for s, _ in found], values=values, mean=mean,
                       std=std)
            if arm == 'baseline':
                base = row
            elif base is not None:
                row.update(paired_gain(row, base))
            rows.append(row)
    return rows


def paired_gain(row: dict, base: dict) -> dict:
    """Per-seed differences of ``row`` to ``base`` over their common
    seeds: mean, standard error, wins."""
    base_by_seed = dict(zip(base['seeds'], base['values']))
    diffs = np.asarray([v - base_by_seed[s]
                        for s, v in zip(row['seeds'], row['values'])
                        if s in base_by_seed], dtype=float)
    if not len(diffs):
        return {}
    se = float(diffs.std(ddof=1) / math.sqrt(len(diffs))) \
        if len(diffs) > 1 else math.nan
    return dict(gain=float(diffs.mean()), gain_se=se,
                wins=int((diffs > 0).sum()), pairs=len(diffs),
                diffs=[float(d) for d in diffs])


def _digits(rows: List[dict], teacher: Optional[float]) -> int:
    values = [abs(v) for r in rows for v in r['values']]
    values += [abs(teacher)] if teacher is not None else []
    return 3 if values and max(values) <= 1.0 else 2


def _pm(mean: float, spread: float, digits: int, sign: str = '') -> str:
    spread = 'n/a' if math.isnan(spread) else f'{spread:.{digits}f}'
    return f'{mean:{sign}.{digits}f} ± {spread}'


def markdown(rows: List[dict], metric: str, teacher: Optional[float],
             command: Optional[str] = None) -> str:
    """The study table (GitHub markdown) with the teacher's score."""
    d = _digits(rows, teacher)
    seeds = sorted({s for r in rows for s in r['seeds']})
    lines = [
        f'| train fraction | arm | seeds | {metric} (mean ± std) '
        '| paired gain over baseline (mean ± s.e.) | wins |',
        '| --- | --- | --- | --- | --- | --- |'
    ]
    for r in rows:
        gain, wins = '—', '—'
        if 'gain' in r:
            gain = _pm(r['gain'], r['gain_se'], d, '+')
            wins = f'{r["wins"]} of {r["pairs"]}'
        lines.append(f'| {r["fraction"]:g} | {r["arm"]} | {r["n"]} | '
                     f'{_pm(r["mean"], r["std"], d)} | {gain} | {wins} |')
    notes = [
        '',
        f'teacher: {teacher:.{d}f} {metric} (trained once, full training '
        'set)' if teacher is not None else 'teacher: not trained (no arm '
        'uses it)',
        f'seeds: {len(seeds)} ({", ".join(map(str, seeds))}); std: sample '
        'std over seeds (ddof=1); paired gain: mean over seeds of '
        'arm(seed) - baseline(seed), s.e. = std(differences) / sqrt(n); '
        'wins: seeds where the arm scored higher',
    ]
    if command:
        notes += ['', f'made by: `{command}`']
    return '\n'.join(lines + notes) + '\n'


def draw_panel(ax, rows: List[dict], metric: str, teacher: Optional[float],
               title: str, teacher_bar: bool = False) -> None:
    """Bars (mean) with error bars (std) and each seed's value as a point;
    the teacher as a dashed line (or, with ``teacher_bar``, a first bar)."""
    labels = [r['arm'] for r in rows]
    means = [r['mean'] for r in rows]
    stds = [0.0 if math.isnan(r['std']) else r['std'] for r in rows]
    colors = ['#9e9e9e' if a == 'baseline' else '#4c72b0' for a in labels]
    if teacher is not None and teacher_bar:
        labels, means = ['teacher'] + labels, [teacher] + means
        stds, colors = [0.0] + stds, ['#dd8452'] + colors
    x = np.arange(len(labels))
    bars = ax.bar(x, means, yerr=stds, capsize=4, color=colors, alpha=0.85)
    d = _digits(rows, teacher)
    ax.bar_label(bars, labels=[f'{m:.{d}f}' for m in means], padding=2,
                 fontsize='small')
    offset = 1 if teacher is not None and teacher_bar else 0
    for i, r in enumerate(rows):
        n = len(r['values'])
        jitter = np.linspace(-0.15, 0.15, n) if n > 1 else np.zeros(1)
        ax.scatter(x[i + offset] + jitter, r['values'], s=14, color='black',
                   zorder=3, label='seeds' if i == 0 else None)
    if teacher is not None and not teacher_bar:
        ax.axhline(teacher, color='#dd8452', linestyle='--',
                   label=f'teacher {teacher:.{d}f}')
    ax.set_xticks(x)
    ax.set_xticklabels(labels)
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.legend(loc='lower right', fontsize='small')


def draw_fractions(ax, rows: List[dict], metric: str,
                   teacher: Optional[float]) -> None:
    """Score vs train fraction, one line per arm (mean, with the seeds'
    std as error bars): where an arm's lead grows or vanishes with data."""
    arms = list(dict.fromkeys(r['arm'] for r in rows))
    for arm in arms:
        mine = sorted((r for r in rows if r['arm'] == arm),
                      key=lambda r: r['fraction'])
        ax.errorbar([r['fraction'] for r in mine], [r['mean'] for r in mine],
                    yerr=[0.0 if math.isnan(r['std']) else r['std']
                          for r in mine],
                    marker='o', capsize=3, label=arm,
                    color='#9e9e9e' if arm == 'baseline' else None)
    if teacher is not None:
        ax.axhline(teacher, color='#dd8452', linestyle='--',
                   label='teacher (full data)')
    ax.set_xscale('log', base=2)
    fracs = sorted({r['fraction'] for r in rows})
    ax.set_xticks(fracs)
    ax.set_xticklabels([f'{f:g}' for f in fracs])
    ax.set_xlabel('train fraction')
    ax.set_ylabel(metric)
    ax.set_title('score vs data')
    ax.legend(fontsize='small')


def plot(rows: List[dict], metric: str, teacher: Optional[float],
         path: str, title: str = '') -> None:
    """``study.png``: one panel per train fraction, and with several
    fractions a panel of score vs fraction per arm."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fractions = list(dict.fromkeys(r['fraction'] for r in rows))
    extra = 1 if len(fractions) > 1 else 0
    fig, axes = plt.subplots(
        1, len(fractions) + extra,
        figsize=(1.2 + 2.8 * (len(fractions) + extra), 4), squeeze=False)
    for ax, fraction in zip(axes[0], fractions):
        draw_panel(ax, [r for r in rows if r['fraction'] == fraction],
                   metric, teacher, f'train fraction {fraction:g}')
    if extra:
        draw_fractions(axes[0][-1], rows, metric, teacher)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

