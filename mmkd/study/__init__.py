"""Seeded KD ablation studies (``tools/analysis_tools/kd_study.py``)."""
from .configs import ARMS, StudyError, pick_metric
from .report import draw_panel, summarize
from .runs import fmt_seconds
from .study import run_study, train_teacher

__all__ = [
    'ARMS', 'StudyError', 'pick_metric', 'draw_panel', 'summarize',
    'fmt_seconds', 'run_study', 'train_teacher'
]
