"""Keep what distillation needs while the student's own ``loss()`` runs.

The student computes its task losses itself (any mmdet / mmseg family);
:class:`Capture` records, with forward hooks, the outputs of the modules
that produce what the KD terms compare (backbone stages, head outputs,
RoIs), so no loss code of a host library is copied into mmkd.
"""
from typing import Any, Callable, Dict, List

import torch.nn as nn


class Capture:
    """Forward hooks recording module inputs / outputs by name.

    Use as a context manager around the student's ``loss()``; the hooks are
    removed on exit. A module called several times is recorded at each call
    (``capture.all(name)``); ``capture[name]`` is the first call's record.
    """

    def __init__(self) -> None:
        self.seen: Dict[str, List[Any]] = {}
        self._handles: list = []

    def output(self, module: nn.Module, name: str,
               pick: Callable = lambda out: out) -> 'Capture':
        """Record ``pick(output)`` of every call of ``module``."""

        def hook(mod, args, out):
            self.seen.setdefault(name, []).append(pick(out))

        self._handles.append(module.register_forward_hook(hook))
        return self

    def input(self, module: nn.Module, name: str,
              pick: Callable = lambda args: args) -> 'Capture':
        """Record ``pick(positional args)`` of every call of ``module``."""

        def hook(mod, args):
            self.seen.setdefault(name, []).append(pick(args))

        self._handles.append(module.register_forward_pre_hook(hook))
        return self

    def keywords(self, module: nn.Module, name: str,
                 pick: Callable = lambda kwargs: kwargs) -> 'Capture':
        """Record ``pick(keyword args)`` of every call of ``module``, for
        modules called with keywords only (mmdet's transformer decoders)."""

        def hook(mod, args, kwargs):
            self.seen.setdefault(name, []).append(pick(kwargs))

        self._handles.append(
            module.register_forward_pre_hook(hook, with_kwargs=True))
        return self

    def __enter__(self) -> 'Capture':
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __contains__(self, name: str) -> bool:
        return name in self.seen

    def all(self, name: str) -> List[Any]:
        if name not in self.seen:
            raise RuntimeError(
                f'the student\'s loss() never ran the module captured as '
                f'"{name}": this family computes its loss another way; '
                'report it with the model config')
        return self.seen[name]

    def __getitem__(self, name: str) -> Any:
        return self.all(name)[0]
