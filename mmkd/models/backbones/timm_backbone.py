"""A timm model as the backbone of an mmdet detector or mmseg segmentor.

timm (https://github.com/huggingface/pytorch-image-models) builds the
feature extractor (``timm.create_model(..., features_only=True)``); this
module adds what mmdet/mmseg backbones have and timm's wrapper lacks:
``out_channels``/``strides``, frozen stages, ``norm_eval``, NCHW tuple
outputs, and loading a *classifier's* checkpoint (e.g. an mmkd-distilled
ImageNet student) into the feature extractor.

mmdet 3.3 and mmseg 1.2 ship no timm wrapper, and mmpretrain's
``TIMMBackbone`` would pull in mmpretrain, which does not support this stack.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import timm
import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from mmkd.registry import MODELS
from mmkd.utils import load_state_dict, read_state_dict

#: prefixes a classifier's keys may carry (after ``module.``): none (timm's
#: own state dict), ``backbone.`` or ``model.`` (mmengine wrappers)
KEY_PREFIXES = ('', 'backbone.', 'model.')
#: ``timm.create_model`` arguments this class sets itself
RESERVED_KWARGS = ('features_only', 'out_indices', 'pretrained',
                   'pretrained_cfg_overlay', 'drop_path_rate')


def classifier_backbone_state(state: Dict[str, torch.Tensor],
                              classifier: nn.Module,
                              filename: str) -> Dict[str, torch.Tensor]:
    """The weights of ``classifier`` without its head, from ``state``.

    The key prefix (one of :data:`KEY_PREFIXES`) is the one under which the
    most of the classifier's keys are found; keys with other prefixes are
    left out. The classification head (``pretrained_cfg['classifier']``) is
    dropped on both sides, so the head may have any number of classes: the
    rest is loaded strictly into the head-less classifier
    (:func:`mmkd.utils.load_state_dict`, so timm's own key adaptation
    applies), whose state dict is returned.

    Args:
        state (dict): Tensors read from ``filename``.
        classifier (nn.Module): The timm classifier the weights belong to;
            its head is removed (``reset_classifier(0)``) and the rest
            filled.
        filename (str): The file's name, for error messages.

    Returns:
        dict: The head-less classifier's state dict.

    Raises:
        ValueError: Non-head keys of the classifier are missing from the
            file, unexpected, or of another shape there (the message names
            the file and the keys).
    """
    heads = classifier.pretrained_cfg.get('classifier') or ()
    heads = (heads, ) if isinstance(heads, str) else tuple(heads)

    def is_head(key: str) -> bool:
        return any(key == h or key.startswith(h + '.') for h in heads)

    classifier.reset_classifier(0)
    own = classifier.state_dict().keys()

    def strip(prefix: str) -> Dict[str, torch.Tensor]:
        return {k[len(prefix):]: v for k, v in state.items()
                if k.startswith(prefix) and not is_head(k[len(prefix):])}

    # max() keeps the first of equals: plain keys win a tie
    prefix = max(KEY_PREFIXES, key=lambda p: len(own & strip(p).keys()))
    name = classifier.pretrained_cfg.get('architecture', '?')
    load_state_dict(classifier, strip(prefix), filename,
                    f'TimmBackbone("{name}", keys read with prefix '
                    f'"{prefix}", head dropped)')
    return classifier.state_dict()


@MODELS.register_module()
class TimmBackbone(BaseModule):
    """Multi-level features of a timm model, for mmdet/mmseg necks and heads.

    Configs with ``default_scope='mmdet'``/``'mmseg'`` use it as
    ``backbone=dict(type='mmkd.TimmBackbone', ...)`` with
    ``custom_imports = dict(imports=['mmkd'])``. The neck's ``in_channels``
    are :attr:`out_channels`.

    Args:
        model_name (str): A timm model name (``timm.list_models()``).
        out_indices (Sequence[int]): timm's feature indices to return; for a
            ResNet 0 is the stem (stride 2) and 1..4 are layer1..layer4
            (strides 4..32), for a ConvNeXt 0..3 are its stages (4..32).
            Defaults to (1, 2, 3, 4).
        checkpoint (str, optional): A file (path or ``http(s)://`` URL)
            holding a timm *classifier's* weights in timm's key names: a
            plain state dict (mmkd's student export), under ``state_dict``/
            ``model`` (or timm's ``state_dict_ema``, see
            ``checkpoint_key``), keys optionally prefixed by ``module.`` and
            then ``backbone.`` or ``model.``. Its non-head keys must fit the
            classifier exactly (else a ValueError names the file and keys);
            the classification head is dropped. Loaded at construction, so
            the runner's ``init_weights()`` keeps it. Defaults to None
            (timm's random initialisation; timm never downloads weights
            here).
        checkpoint_key (str): Which entry of ``checkpoint`` to load
            (``'auto'``, ``''`` for the file itself, or a key), as in
            :func:`mmkd.utils.read_state_dict`. Defaults to ``'auto'``.
        drop_path_rate (float): Stochastic depth rate (timm's argument; left
            out when 0). Defaults to 0.
        frozen_stages (int): Freeze (no gradients, eval mode) everything up
            to and including the module of feature index ``frozen_stages``,
            e.g. 1 for a ResNet's stem and layer1 as in mmdet's ResNet
            (``frozen_stages=1``). -1 freezes nothing. Defaults to -1.
        norm_eval (bool): Keep BatchNorm layers in eval mode (frozen running
            statistics) during training, as mmdet's ResNet does. Defaults to
            False.
        model_kwargs (dict, optional): More ``timm.create_model`` arguments
            (``in_chans``, ``img_size``, ...), not those this class sets.
            Defaults to None.
        init_cfg (dict | list, optional): mmengine initialisation of this
            module; not together with ``checkpoint``. Defaults to None
            (keep timm's initialisation).
    """

    def __init__(self,
                 model_name: str,
                 out_indices: Sequence[int] = (1, 2, 3, 4),
                 checkpoint: Optional[str] = None,
                 checkpoint_key: str = 'auto',
                 drop_path_rate: float = 0.,
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 model_kwargs: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        model_kwargs = dict(model_kwargs or {})
        reserved = sorted(set(model_kwargs) & set(RESERVED_KWARGS))
        if reserved:
            raise ValueError(f'TimmBackbone: model_kwargs may not set '
                             f'{reserved}; use the TimmBackbone arguments')
        if checkpoint is not None and init_cfg:
            raise ValueError('TimmBackbone: give either checkpoint '
                             f'("{checkpoint}") or init_cfg ({init_cfg}), '
                             'not both')
        kwargs = dict(model_kwargs)
        if drop_path_rate:
            kwargs['drop_path_rate'] = drop_path_rate
        if checkpoint is not None:
            # check the file against the full classifier, then let timm's
            # own loader (pretrained_cfg_overlay=dict(state_dict=...)) put
            # it into the model before wrapping it as a feature extractor:
            # that loader drops the head and applies the model's filters,
            # but loads non-strictly, hence the check first
            classifier = timm.create_model(
                model_name, pretrained=False, **model_kwargs)
            state = classifier_backbone_state(
                read_state_dict(checkpoint, checkpoint_key, 'TimmBackbone')[0],
                classifier, checkpoint)
            del classifier
            kwargs.update(
                pretrained=True,
                pretrained_cfg_overlay=dict(state_dict=state))
        out_indices = tuple(out_indices)
        try:
            self.model = timm.create_model(
                model_name, features_only=True, out_indices=out_indices,
                **kwargs)
        except (AssertionError, IndexError) as err:
            info = timm.create_model(model_name, **model_kwargs).feature_info
            raise ValueError(
                f'TimmBackbone: out_indices {out_indices} do not fit timm '
                f'model "{model_name}", which has feature indices 0..'
                f'{len(info) - 1} ({[f["module"] for f in info]})') from err
        info = self.model.feature_info
        self.out_indices = out_indices
        self.out_channels: List[int] = list(info.channels())
        self.strides: List[int] = list(info.reduction())
        # timm's Format is a str enum: compare by value
        self.nhwc = getattr(self.model, 'output_fmt', 'NCHW') == 'NHWC'
        if not -1 <= frozen_stages < len(info):
            raise ValueError(
                f'TimmBackbone: frozen_stages={frozen_stages} is not -1 or a '
                f'feature index 0..{len(info) - 1} of "{model_name}"')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.checkpoint = checkpoint
        self._freeze_stages()

    def _frozen(self) -> Tuple[List[nn.Module], List[nn.Parameter]]:
        """Modules and parameters up to feature ``frozen_stages``'s module.

        timm's feature extractors keep the model's modules in the order they
        run (the assumption its own ``FeatureDictNet`` rests on), under the
        names ``stages.0`` (kept), ``stages_0`` (flattened) or
        ``model.stages.0`` (wrapped): everything registered up to the end of
        that module runs before it.
        """
        if self.frozen_stages < 0:
            return [], []
        target = self.model.feature_info.module_name(self.frozen_stages)
        aliases = (target, target.replace('.', '_'), 'model.' + target)

        def inside(name: str) -> bool:
            return any(name == a or name.startswith(a + '.') for a in aliases)

        params = list(self.model.named_parameters())
        last = max(i for i, (n, _) in enumerate(params) if inside(n))
        modules = list(self.model.named_modules())
        end = max(i for i, (n, _) in enumerate(modules) if inside(n))
        later = [n for n, _ in modules[end + 1:]]
        # not the containers of modules that run later (the root, a ViT)
        frozen = [
            m for n, m in modules[:end + 1]
            if n and not any(x.startswith(n + '.') for x in later)
        ]
        return frozen, [p for _, p in params[:last + 1]]

    def _freeze_stages(self) -> None:
        modules, params = self._frozen()
        for p in params:
            p.requires_grad_(False)
        for m in modules:
            m.eval()

    def train(self, mode: bool = True) -> 'TimmBackbone':
        """Switch modes, keeping frozen stages (and BN if ``norm_eval``) in
        eval mode."""
        super().train(mode)
        if mode:
            self._freeze_stages()
            if self.norm_eval:
                for m in self.modules():
                    if isinstance(m, _BatchNorm):
                        m.eval()
        return self

    def init_weights(self) -> None:
        """Apply ``init_cfg`` if given; otherwise keep the weights as they
        are (timm's initialisation or the loaded ``checkpoint``), so the
        runner's recursive ``init_weights()`` cannot reset them (timm's
        HRNet feature extractor, for one, has an ``init_weights()`` that
        re-draws every conv)."""
        if self.init_cfg:
            super().init_weights()
        else:
            self._is_init = True

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """The features at :attr:`out_indices`, each (N, C, H, W)."""
        outs = self.model(x)
        if self.nhwc:
            outs = [o.permute(0, 3, 1, 2).contiguous() for o in outs]
        return tuple(outs)
