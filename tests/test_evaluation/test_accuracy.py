"""mmkd.Accuracy: hand-computed top-1 / top-5 through mmengine's Evaluator."""
from unittest import mock

import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.structures import BaseDataElement

from mmkd.evaluation import Accuracy
from mmkd.registry import METRICS

# 7 classes; the rank of the true class in each row is noted
SCORES = torch.tensor([
    [.9, .1, .0, .0, .0, .0, .0],  # label 0: rank 1
    [.1, .2, .3, .4, .5, .6, .7],  # label 2: rank 5
    [.7, .6, .5, .4, .3, .2, .1],  # label 6: rank 7
    [.3, .5, .1, .0, .0, .0, .05],  # label 0: rank 2
    [.0, .0, .0, .0, .0, .1, .9],  # label 6: rank 1
])
LABELS = [0, 2, 6, 0, 6]
# top-1: rows 0, 4 -> 2/5; top-5: rows 0, 1, 3, 4 -> 4/5


def _samples():
    return [
        BaseDataElement(pred_score=s, gt_label=torch.tensor([y]))
        for s, y in zip(SCORES, LABELS)
    ]


def test_hand_computed_top1_top5_through_evaluator():
    evaluator = Evaluator(dict(type='mmkd.Accuracy', topk=(1, 5)))
    samples = _samples()
    evaluator.process(samples[:2])  # two batches; converted to dicts
    evaluator.process(samples[2:])
    metrics = evaluator.evaluate(len(samples))
    assert metrics.keys() == {'accuracy/top1', 'accuracy/top5'}
    assert metrics['accuracy/top1'] == pytest.approx(40.0)
    assert metrics['accuracy/top5'] == pytest.approx(80.0)


def test_data_elements_and_plain_labels_and_prefix():
    metric = METRICS.build(
        dict(type='mmkd.Accuracy', topk=(2, 7), prefix='val'))
    metric.process(None, _samples()[:3])  # BaseDataElement directly
    metric.process(None, [
        dict(pred_score=s, gt_label=y)
        for s, y in zip(SCORES[3:], LABELS[3:])
    ])  # dicts with int labels
    metrics = metric.evaluate(5)
    assert metrics == pytest.approx({'val/top2': 60.0, 'val/top7': 100.0})


def test_k_above_class_count_is_clamped_with_one_warning():
    metric = Accuracy(topk=(1, 10))
    with mock.patch('mmkd.evaluation.metrics.accuracy.print_log') as log:
        for _ in range(2):
            metric.process(None, _samples())
            metrics = metric.evaluate(5)
            assert metrics == pytest.approx({
                'accuracy/top1': 40.0,
                'accuracy/top10': 100.0
            })
    assert log.call_count == 1
    assert 'top-10 asked for 7 classes' in log.call_args[0][0]


def test_errors():
    with pytest.raises(ValueError, match='topk must be positive ints'):
        Accuracy(topk=(0, 5))
    metric = Accuracy()
    with pytest.raises(KeyError, match=r"has \['gt_label', 'pred_label'\]"):
        metric.process(None, [dict(pred_label=1, gt_label=1)])
    metric.process(None, [dict(pred_score=torch.rand(3), gt_label=5)])
    with pytest.raises(ValueError, match='gt_label 5 is outside the 3 '
                       'classes'):
        metric.compute_metrics(metric.results)
    with pytest.raises(ValueError, match='lengths differ .* \\[3, 4\\]'):
        metric.compute_metrics([(torch.rand(3), 0), (torch.rand(4), 0)])
