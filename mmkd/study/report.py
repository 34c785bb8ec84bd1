"""A study's numbers: mean ± std per arm and fraction, gains, table, plot.

``std`` is the sample standard deviation (``ddof=1``) over seeds; the gain
of an arm over the baseline is the difference of their means, with spread
``sqrt(s_a^2 / n_a + s_b^2 / n_b)`` (the standard error of that difference).
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
        in the study, ``gain`` and ``gain_spread``.
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
                row['gain'] = mean - base['mean']
                row['gain_spread'] = math.sqrt(
                    std**2 / row['n'] + base['std']**2 / base['n'])
            rows.append(row)
    return rows


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
        '| gain over baseline (± spread) |', '| --- | --- | --- | --- | --- |'
    ]
    for r in rows:
        gain = _pm(r['gain'], r['gain_spread'], d, '+') if 'gain' in r \
            else '—'
        lines.append(f'| {r["fraction"]:g} | {r["arm"]} | {r["n"]} | '
                     f'{_pm(r["mean"], r["std"], d)} | {gain} |')
    notes = [
        '',
        f'teacher: {teacher:.{d}f} {metric} (trained once, full training '
        'set)' if teacher is not None else 'teacher: not trained (no arm '
        'uses it)',
        f'seeds: {len(seeds)} ({", ".join(map(str, seeds))}); std: sample '
        'std over seeds (ddof=1); spread of a gain: '
        'sqrt(s_arm^2/n_arm + s_base^2/n_base)',
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


def plot(rows: List[dict], metric: str, teacher: Optional[float],
         path: str, title: str = '') -> None:
    """``study.png``: one panel per train fraction."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fractions = list(dict.fromkeys(r['fraction'] for r in rows))
    fig, axes = plt.subplots(
        1, len(fractions), figsize=(1.2 + 2.8 * len(fractions), 4),
        squeeze=False, sharey=True)
    for ax, fraction in zip(axes[0], fractions):
        draw_panel(ax, [r for r in rows if r['fraction'] == fraction],
                   metric, teacher, f'train fraction {fraction:g}')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

