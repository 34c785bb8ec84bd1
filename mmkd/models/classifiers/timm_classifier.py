"""A timm classifier as an mmengine model (the student/teacher of
classification distillation, e.g. the VanillaKD ImageNet recipes,
https://arxiv.org/abs/2305.15781).

The timm model is the child ``model``, untouched, so its weights export to
plain timm by dropping the ``model.`` prefix (:meth:`TimmClassifier.
plain_state_dict`), and plain timm weights load back into a
``TimmClassifier`` (a load-state-dict pre-hook adds the prefix): one file
serves ``tools/test.py`` and ``timm.create_model(..., checkpoint_path=)``.

Data samples follow mmkd's classification contract: each carries
``gt_label`` (LongTensor ``[1]``) and, in training with mixup/cutmix or label
smoothing, ``gt_score`` (FloatTensor ``[C]``, summing to 1).
"""
from typing import Dict, List, Optional, Sequence

import timm
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement

from mmkd.losses.timm_losses import HARD_TARGET_ONLY, SOFT_TARGET_ONLY
from mmkd.registry import MODELS
from mmkd.utils import load_weights

#: arguments that TimmClassifier sets itself; not allowed in model_kwargs
_OWN_ARGS = ('pretrained', 'num_classes', 'drop_rate', 'drop_path_rate',
             'checkpoint_path', 'pretrained_cfg_overlay')


def _few(keys: Sequence[str], n: int = 5) -> str:
    keys = sorted(keys)
    return ', '.join(keys[:n]) + (f' ... ({len(keys)} in all)'
                                  if len(keys) > n else '')


@MODELS.register_module()
class TimmClassifier(BaseModel):
    """Any ``timm.create_model`` classifier under mmengine's runner.

    Forward modes: ``'tensor'`` returns the logits ``(B, C)``; ``'loss'``
    returns ``dict(loss_cls=...)``; ``'predict'`` returns the data samples
    with ``pred_score`` (softmax, ``[C]``) and ``pred_label`` (LongTensor
    ``[1]``) set.

    Args:
        model_name (str): timm model name, e.g. ``'resnet50'``.
        num_classes (int): Number of classes.
        drop_rate (float): Classifier dropout. Defaults to 0.
        drop_path_rate (float): Stochastic depth rate. Defaults to 0. (Both
            are passed to timm only when non-zero, so models without them
            build with the defaults.)
        checkpoint (str, optional): Weights to start from, a path or an
            ``http(s)://`` URL (loaded on the CPU under mmkd's checkpoint
            policy, strict key match: :func:`mmkd.utils.load_weights`). The
            file may hold a raw state dict or one under ``state_dict_ema``,
            ``model_ema``, ``state_dict`` or ``model`` (that order, as
            timm's ``load_checkpoint``, unless ``checkpoint_key`` says
            otherwise); keys may be plain timm ones or ``TimmClassifier``
            ones (``model.`` prefix), with or without ``module.``. Defaults
            to None.
        checkpoint_key (str): Which entry of ``checkpoint`` to load
            (``'auto'``, ``''`` for the file itself, or a key such as
            ``'state_dict'``). Defaults to ``'auto'``.
        model_kwargs (dict, optional): Further ``timm.create_model``
            arguments (``img_size``, ``depth``, ...). Defaults to None.
        loss (dict): The label loss. It gets the stacked ``gt_score``
            ``(B, C)`` when every sample has one, else the labels ``(B,)``.
            Defaults to ``dict(type='mmkd.TimmBinaryCrossEntropy')`` (the
            VanillaKD recipes).
        data_preprocessor (dict, optional): Usually
            ``dict(type='mmkd.ClsDataPreprocessor', ...)``. Defaults to None
            (mmengine's ``BaseDataPreprocessor``).
        init_cfg (dict, optional): mmengine initialisation config. Defaults
            to None (timm's own initialisation, done when the model is
            created).
    """

    def __init__(self,
                 model_name: str,
                 num_classes: int,
                 drop_rate: float = 0.,
                 drop_path_rate: float = 0.,
                 checkpoint: Optional[str] = None,
                 checkpoint_key: str = 'auto',
                 model_kwargs: Optional[dict] = None,
                 loss: dict = dict(type='mmkd.TimmBinaryCrossEntropy'),
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        model_kwargs = dict(model_kwargs or {})
        clash = [k for k in _OWN_ARGS if k in model_kwargs]
        if clash:
            raise ValueError(
                f'TimmClassifier: model_kwargs must not set {clash}; use the '
                'arguments num_classes, drop_rate, drop_path_rate and '
                'checkpoint (pretrained downloads are not supported)')
        drops = dict(drop_rate=drop_rate, drop_path_rate=drop_path_rate)
        model_kwargs.update({k: v for k, v in drops.items() if v})
        self.model = timm.create_model(
            model_name,
            pretrained=False,
            num_classes=num_classes,
            **model_kwargs)
        # timm initialises its weights when the model is created. mmengine's
        # init_weights() (run by Runner.train()) would call timm's own
        # init_weights() (ViT, ResNet, ...) again and re-draw them, losing
        # `checkpoint`; mmengine skips children flagged `is_init`.
        self.model.is_init = True
        self.num_classes = num_classes
        self.loss_module = MODELS.build(loss)
        self.register_load_state_dict_pre_hook(self._add_model_prefix)
        if checkpoint is not None:
            load_weights(self, checkpoint, 'TimmClassifier', checkpoint_key)

    # ------------------------------------------------------------ forward
    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[List[BaseDataElement]] = None,
                mode: str = 'tensor'):
        if mode == 'tensor':
            return self.model(inputs)
        if mode == 'loss':
            return self.loss_by_logits(self.model(inputs), data_samples)
        if mode == 'predict':
            return self.predict_by_logits(self.model(inputs), data_samples)
        raise RuntimeError(f'TimmClassifier: invalid mode "{mode}"; use '
                           '"tensor", "loss" or "predict"')

    def targets(self, data_samples: Sequence[BaseDataElement]) -> torch.Tensor:
        """The label-loss target of a batch.

        Args:
            data_samples (list[BaseDataElement]): Samples with ``gt_label``
                and, optionally, ``gt_score``.

        Returns:
            Tensor: Stacked ``gt_score`` ``(B, C)`` when every sample has
            one, else the ``gt_label`` values ``(B,)`` (long).
        """
        if not data_samples:
            raise ValueError('TimmClassifier: the loss needs data samples '
                             'with gt_label / gt_score, got none')
        if all('gt_score' in s for s in data_samples):
            scores = [s.gt_score for s in data_samples]
            for i, score in enumerate(scores):
                if score.shape != (self.num_classes, ):
                    raise ValueError(
                        f'TimmClassifier: data sample {i} has gt_score of '
                        f'shape {tuple(score.shape)}, the model has '
                        f'{self.num_classes} classes')
            return torch.stack(scores)
        for i, s in enumerate(data_samples):
            if 'gt_label' not in s:
                raise KeyError(f'TimmClassifier: data sample {i} has neither '
                               'gt_score nor gt_label')
            if s.gt_label.numel() != 1:
                raise ValueError(
                    f'TimmClassifier: data sample {i} has gt_label of shape '
                    f'{tuple(s.gt_label.shape)}, expected one label [1]')
        return torch.cat([s.gt_label.reshape(1)
                          for s in data_samples]).long()

    def loss_by_logits(
        self, logits: torch.Tensor, data_samples: Sequence[BaseDataElement]
    ) -> Dict[str, torch.Tensor]:
        """The label loss of ``logits`` ``(B, C)`` against the samples.

        Args:
            logits (Tensor): Logits ``(B, C)``.
            data_samples (list[BaseDataElement]): The batch's samples.

        Returns:
            dict: ``dict(loss_cls=...)``.
        """
        target = self.targets(data_samples).to(logits.device)
        if target.shape[0] != logits.shape[0]:
            raise ValueError(f'TimmClassifier: {target.shape[0]} targets for '
                             f'{logits.shape[0]} logits')
        loss = self.loss_module
        if target.dim() == 1 and isinstance(loss, SOFT_TARGET_ONLY):
            target = F.one_hot(target, logits.shape[-1]).to(logits.dtype)
        elif target.dim() == 2 and isinstance(loss, HARD_TARGET_ONLY):
            raise ValueError(
                f'TimmClassifier: loss {type(loss).__name__} takes hard '
                'labels (B,), but the data samples carry soft gt_score '
                'targets (B, C) (mixup/cutmix or label smoothing in the data '
                'preprocessor); use mmkd.TimmSoftTargetCrossEntropy or '
                'mmkd.TimmBinaryCrossEntropy')
        return dict(loss_cls=loss(logits, target))

    def predict_by_logits(
        self,
        logits: torch.Tensor,
        data_samples: Optional[List[BaseDataElement]] = None
    ) -> List[BaseDataElement]:
        """Set ``pred_score`` and ``pred_label`` on the data samples.

        Args:
            logits (Tensor): Logits ``(B, C)``.
            data_samples (list[BaseDataElement], optional): The batch's
                samples. Defaults to None (new empty samples).

        Returns:
            list[BaseDataElement]: The samples with predictions.
        """
        if data_samples is None:
            data_samples = [BaseDataElement() for _ in range(len(logits))]
        scores = logits.detach().softmax(dim=-1)
        labels = scores.argmax(dim=-1, keepdim=True)
        for sample, score, label in zip(data_samples, scores, labels):
            sample.pred_score = score
            sample.pred_label = label
        return data_samples

    # ------------------------------------------------------------ weights
    @staticmethod
    def plain_state_dict(state: Dict[str, torch.Tensor]) -> dict:
        """Plain timm keys from a ``TimmClassifier`` state dict.

        Keeps the ``model.*`` entries without the prefix and drops the rest
        (data preprocessor, loss), so that ``timm.create_model(name,
        num_classes=C, checkpoint_path=file)`` or ``load_state_dict(...,
        strict=True)`` accepts the result.

        Args:
            state (dict): A ``TimmClassifier`` state dict.

        Returns:
            dict: The timm model's state dict.
        """
        plain = {k[len('model.'):]: v for k, v in state.items()
                 if k.startswith('model.')}
        if not plain:
            raise ValueError('plain_state_dict: no "model." keys in the '
                             f'state dict (keys: {_few(list(state))})')
        return plain

    def _add_model_prefix(self, module, state_dict: dict, prefix: str,
                          *args) -> None:
        """Load-state-dict pre-hook: plain timm keys -> ``model.`` keys.

        A key is renamed only when it is one of the timm model's keys and
        not one of this module's, so ``TimmClassifier`` state dicts (and
        this module nested in a distiller, ``prefix='student.'``) load as
        before.
        """
        model_keys = set(self.model.state_dict(keep_vars=True))
        for key in list(state_dict):
            if not key.startswith(prefix):
                continue
            rest = key[len(prefix):]
            if rest in model_keys and \
                    prefix + 'model.' + rest not in state_dict:
                state_dict[prefix + 'model.' + rest] = state_dict.pop(key)

    def extra_repr(self) -> str:
        return f'num_classes={self.num_classes}'
