"""Top-k classification accuracy.

Written here because mmpretrain, whose ``Accuracy`` this mirrors (same
``accuracy/top{k}`` keys, in percent), is not installed: it does not support
this stack (mmcv 2.1 / torch 2.x as pinned by mmkd).
"""
import logging
from typing import List, Optional, Sequence, Union

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from mmkd.registry import METRICS


@METRICS.register_module()
class Accuracy(BaseMetric):
    """Top-k accuracy (%) of ``pred_score`` against ``gt_label``.

    Reads each data sample's ``pred_score`` (float ``[C]``) and ``gt_label``
    (a class index, e.g. a long tensor of shape ``[1]``); samples may be
    :class:`~mmengine.structures.BaseDataElement` or the dicts that
    mmengine's ``Evaluator.process`` makes of them with ``to_dict()``.
    Reports ``accuracy/top{k}`` for each k. A k larger than the class count
    C is computed as top-C (always 100 %) under its own key, with one
    warning in the log per metric and k.

    Args:
        topk (int | Sequence[int]): The k values. Defaults to ``(1, 5)``.
        collect_device (str): Where results are gathered across ranks,
            ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        prefix (str, optional): Key prefix. Defaults to None
            (``'accuracy'``).
        collect_dir (str, optional): Temporary folder for gathering on the
            CPU. Defaults to None.
    """

    default_prefix = 'accuracy'

    def __init__(self,
                 topk: Union[int, Sequence[int]] = (1, 5),
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(
            collect_device=collect_device,
            prefix=prefix,
            collect_dir=collect_dir)
        topk = (topk, ) if isinstance(topk, int) else tuple(topk)
        if not topk or not all(isinstance(k, int) and k > 0 for k in topk):
            raise ValueError(
                f'Accuracy: topk must be positive ints, got {topk!r}')
        self.topk = topk
        self._warned = set()

    def process(self, data_batch, data_samples: Sequence) -> None:
        for i, sample in enumerate(data_samples):
            score = sample.get('pred_score', None)
            label = sample.get('gt_label', None)
            if score is None or label is None:
                keys = sorted(
                    sample.keys() if isinstance(sample, dict) else
                    sample.all_keys())
                raise KeyError(
                    f'Accuracy: data sample {i} needs pred_score and '
                    f'gt_label, has {keys}')
            score = torch.as_tensor(score).detach().cpu().float()
            label = torch.as_tensor(label).reshape(-1)
            if score.ndim != 1 or label.numel() != 1:
                raise ValueError(
                    f'Accuracy: data sample {i} needs a [C] pred_score and '
                    f'one gt_label, got shapes {tuple(score.shape)} and '
                    f'{tuple(label.shape)}')
            self.results.append((score, int(label)))

    def compute_metrics(self, results: List[tuple]) -> dict:
        num_classes = {len(score) for score, _ in results}
        if len(num_classes) != 1:
            raise ValueError('Accuracy: pred_score lengths differ between '
                             f'samples: {sorted(num_classes)}')
        num_classes = num_classes.pop()
        scores = torch.stack([score for score, _ in results])
        labels = torch.tensor([label for _, label in results])
        if ((labels < 0) | (labels >= num_classes)).any():
            bad = labels[(labels < 0) | (labels >= num_classes)][0]
            raise ValueError(f'Accuracy: gt_label {int(bad)} is outside the '
                             f'{num_classes} classes of pred_score')
        metrics = {}
        for k in self.topk:
            if k > num_classes and k not in self._warned:
                self._warned.add(k)
                print_log(
                    f'Accuracy: top-{k} asked for {num_classes} classes; '
                    f'reporting top-{num_classes} as accuracy/top{k}',
                    logger='current',
                    level=logging.WARNING)
            top = scores.topk(min(k, num_classes), dim=1).indices
            hit = (top == labels[:, None]).any(dim=1)
            metrics[f'top{k}'] = hit.float().mean().item() * 100
        return metrics
