"""Checkpoint loading policy for torch >= 2.6 (``weights_only=True`` default).

One policy, used everywhere mmkd or mmengine reads a local checkpoint:

* Everything is loaded with ``torch.load(..., weights_only=True)``.
* mmengine's own checkpoints (resume / ``load_from``) hold a few non-tensor
  objects in their ``message_hub`` (``HistoryBuffer`` with numpy arrays).
  Those exact types are added to torch's allow-list once, at ``import mmkd``.
  A pickled ``HistoryBuffer`` also refers to its statistics methods through
  ``builtins.getattr``; ``getattr`` is allowed only while loading a file whose
  non-default objects are all of that mmengine set (and even then the
  weights-only unpickler calls nothing outside its allow-list).
* Any other object in a file is refused with :class:`UnsafeCheckpointError`,
  which names the file and the objects and says how to allow them: either
  ``torch.serialization.add_safe_globals([...])`` for the named classes, or,
  for a file you trust completely, the environment variable
  ``MMKD_TRUST_CHECKPOINTS=1`` (loads with ``weights_only=False``).

``load_checkpoint`` also takes an ``http(s)://`` URL: the file is downloaded
once into torch hub's checkpoint cache (``torch.hub.get_dir()/checkpoints``,
where mmengine's own URL loader keeps its files) by :func:`download_checkpoint`
and then loaded from there under the same policy.

``register_checkpoint_policy`` installs :func:`load_checkpoint` as mmengine's
loader for local paths and for ``http://`` / ``https://``, so the runner's
``load_from``/``resume``, mmdet's ``init_detector`` and mmseg's
``init_model`` all go through it.
"""
import hashlib
import http.client
import os
import os.path as osp
import pickle
import tempfile
import urllib.error
import urllib.request
import warnings
from typing import Any, Optional, Union
from urllib.parse import urlparse

import numpy as np
import torch
import torch.hub

TRUST_ENV = 'MMKD_TRUST_CHECKPOINTS'


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs unpickling of objects outside the allow-list."""


def _mmengine_safe_globals() -> list:
    """The non-tensor types that mmengine 0.10 writes into its checkpoints."""
    from mmengine.logging import HistoryBuffer
    safe = [HistoryBuffer, np.ndarray, np.dtype]
    safe.append(np._core.multiarray._reconstruct if hasattr(np, '_core') else
                np.core.multiarray._reconstruct)
    safe.append(np._core.multiarray.scalar if hasattr(np, '_core') else
                np.core.multiarray.scalar)
    # numpy >= 1.25 pickles dtypes through their per-type classes
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        safe += [
            getattr(dtypes, name) for name in dir(dtypes)
            if name.endswith('DType') and isinstance(getattr(dtypes, name), type)
        ]
    return safe


def _qualname(obj) -> str:
    return f'{obj.__module__}.{obj.__qualname__}'


def allow_mmengine_checkpoints() -> None:
    """Allow-list the types of mmengine's runner checkpoints (idempotent)."""
    torch.serialization.add_safe_globals(_mmengine_safe_globals())


def is_url(filename: Union[str, os.PathLike]) -> bool:
    """Whether ``filename`` is an ``http://`` or ``https://`` URL."""
    return str(filename).startswith(('http://', 'https://'))


def checkpoint_cache_dir() -> str:
    """torch hub's checkpoint cache, where mmengine keeps downloads too."""
    return osp.join(torch.hub.get_dir(), 'checkpoints')


def cache_name(url: str) -> str:
    """The file name of ``url`` in the cache.

    Names that carry a hash (torch hub's and OpenMMLab's convention,
    ``retinanet_..._20200130-c2398f9e.pth``) are kept, so files mmengine
    downloaded are reused; others (``pytorch_model.bin``,
    ``model.safetensors`` of every Hugging Face repository) get a hash of
    the URL, so two models never share a cache file.
    """
    name = osp.basename(urlparse(url).path)
    if not name:
        raise ValueError(f'checkpoint URL "{url}" does not end in a file name')
    match = torch.hub.HASH_REGEX.search(name)
    if match and match.group(1):
        return name
    stem, ext = osp.splitext(name)
    return f'{stem}_{hashlib.sha256(url.encode()).hexdigest()[:10]}{ext}'


def download_checkpoint(url: str,
                        cache_dir: Optional[str] = None,
                        progress: bool = True) -> str:
    """Download ``url`` into the checkpoint cache once; return the path.

    The file is named by :func:`cache_name`; one already in the cache is
    used without a request. A new file is
    written to a temporary name in the cache dir, its size checked against
    the server's ``Content-Length`` (when sent), and only then renamed to
    its final name, so an interrupted or truncated download never leaves a
    file that later passes as complete.

    Args:
        url (str): ``http(s)://`` URL of the checkpoint.
        cache_dir (str, optional): Where to keep it. Defaults to None
            (:func:`checkpoint_cache_dir`).
        progress (bool): Show a progress bar on stderr. Defaults to True.

    Returns:
        str: The local path of the complete file.

    Raises:
        OSError: The server answered with an error status, could not be
            reached, or sent fewer bytes than it announced (the message
            names the URL).
    """
    cache_dir = cache_dir or checkpoint_cache_dir()
    name = cache_name(url)
    path = osp.join(cache_dir, name)
    if osp.isfile(path):
        return path
    os.makedirs(cache_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=name + '.', suffix='.partial',
                               dir=cache_dir)
    try:
        with os.fdopen(fd, 'wb') as out, urllib.request.urlopen(
                urllib.request.Request(
                    url, headers={'User-Agent': 'mmkd'})) as response:
            size = response.headers.get('Content-Length')
            size = int(size) if size is not None else None
            done = 0
            with torch.hub.tqdm(total=size, disable=not progress, unit='B',
                                unit_scale=True, unit_divisor=1024,
                                desc=name) as bar:
                while True:
                    chunk = response.read(1 << 16)
                    if not chunk:
                        break
                    out.write(chunk)
                    done += len(chunk)
                    bar.update(len(chunk))
        if size is not None and done != size:
            raise OSError(f'downloading checkpoint "{url}": got {done} of '
                          f'{size} bytes (the transfer was cut short); '
                          'nothing was cached, try again')
        os.chmod(tmp, 0o644)  # mkstemp makes it private
        os.replace(tmp, path)  # atomic: the final name only when complete
    except urllib.error.HTTPError as err:
        raise OSError(f'downloading checkpoint "{url}" failed: HTTP '
                      f'{err.code} {err.reason}') from None
    except urllib.error.URLError as err:
        raise OSError(f'downloading checkpoint "{url}" failed: '
                      f'{err.reason}') from None
    except http.client.HTTPException as err:  # e.g. IncompleteRead
        raise OSError(f'downloading checkpoint "{url}" failed: {err!r}; '
                      'nothing was cached, try again') from None
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return path


def _load_safetensors(filename: str, map_location: Any) -> dict:
    """A ``.safetensors`` file (Hugging Face / timm) as a state dict."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    device = map_location if isinstance(map_location, str) else 'cpu'
    try:
        return load_file(filename, device=device)
    except SafetensorError as err:
        raise RuntimeError(
            f'checkpoint "{filename}" is not a readable safetensors file '
            f'(truncated or corrupt?): {err}') from None


def load_checkpoint(filename: Union[str, os.PathLike],
                    map_location: Optional[Any] = 'cpu') -> Any:
    """Load a local or ``http(s)://`` checkpoint under mmkd's policy.

    ``.safetensors`` files (tensors only, nothing to unpickle) are read with
    the ``safetensors`` package (a dependency of timm).

    Args:
        filename (str | PathLike): Path or URL of the checkpoint file (a URL
            is downloaded once by :func:`download_checkpoint`).
        map_location (Any, optional): As in ``torch.load``. Defaults to
            ``'cpu'``.

    Returns:
        Any: The loaded object (usually a dict with ``state_dict``).

    Raises:
        FileNotFoundError: The file does not exist (the message names it).
        OSError: A URL could not be downloaded (the message names it).
        RuntimeError: The file is not a readable torch checkpoint, e.g.
            truncated (the message names it).
        UnsafeCheckpointError: The file holds objects outside the allow-list
            and ``MMKD_TRUST_CHECKPOINTS=1`` is not set.
    """
    filename = os.fspath(filename)
    if is_url(filename):
        filename = download_checkpoint(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file "{filename}" does not exist')
    if filename.endswith('.safetensors'):  # tensors only: nothing to unpickle
        return _load_safetensors(filename, map_location)
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError) as err:  # e.g. a truncated zip archive
        raise RuntimeError(
            f'checkpoint "{filename}" is not a readable torch checkpoint '
            f'(truncated or corrupt?): {str(err).splitlines()[0]}') from None
    except pickle.UnpicklingError as err:
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(
                filename)
        except Exception:  # not a zip checkpoint: fall back to torch's text
            names = []
        mmengine_set = {_qualname(o) for o in _mmengine_safe_globals()}
        mmengine_set.add('builtins.getattr')
        if names and set(names) <= mmengine_set:  # an mmengine checkpoint
            with torch.serialization.safe_globals([getattr]):
                return torch.load(
                    filename, map_location=map_location, weights_only=True)
        names = [n for n in names if n not in mmengine_set]
        if os.environ.get(TRUST_ENV) == '1':
            warnings.warn(f'{TRUST_ENV}=1: loading "{filename}" with full '
                          'unpickling (weights_only=False)')
            return torch.load(
                filename, map_location=map_location, weights_only=False)
        what = ', '.join(names) if names else str(err).splitlines()[0]
        raise UnsafeCheckpointError(
            f'checkpoint "{filename}" needs unpickling of objects that are '
            f'not allowed under weights_only=True: {what}. If you trust this '
            'file, either allow those classes with '
            'torch.serialization.add_safe_globals([...]) before loading, or '
            f'set the environment variable {TRUST_ENV}=1 to load it with '
            'weights_only=False.') from None


# mmengine logs a loader as its name after "load_from_" ("local", "http")
def load_from_local(filename: str, map_location=None) -> Any:
    """mmengine's loader for local paths, under the policy."""
    filename = osp.expanduser(filename)
    return load_checkpoint(filename, map_location=map_location)


def load_from_http(filename: str, map_location=None) -> Any:
    """mmengine's loader for ``http(s)://`` URLs: download once into the
    cache (:func:`download_checkpoint`), then load under the policy."""
    return load_checkpoint(filename, map_location=map_location)


def register_checkpoint_policy() -> None:
    """Route mmengine's local-file and ``http(s)://`` checkpoint loading
    through the policy."""
    from mmengine.runner.checkpoint import CheckpointLoader
    allow_mmengine_checkpoints()
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local, force=True)
    CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'), loader=load_from_http,
        force=True)
