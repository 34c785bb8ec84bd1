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

A file that is damaged — a torch zip archive whose records do not fit in
the file, a file with no pickle or safetensors header, a pickle that ends
early — is refused with :class:`CorruptCheckpointError` ("corrupt or
truncated", naming the file) before or instead of any ``weights_only``
advice: :func:`check_checkpoint_file` checks the structure without loading
it (the training pre-flight runs it too).

``load_checkpoint`` also takes an ``http(s)://`` URL: the file is downloaded
once into torch hub's checkpoint cache (``torch.hub.get_dir()/checkpoints``,
where mmengine's own URL loader keeps its files) by :func:`download_checkpoint`
and then loaded from there under the same policy. Under ``torch.distributed``
only local rank 0 of each node downloads; the other ranks wait for it (see
:func:`download_checkpoint`).

``register_checkpoint_policy`` installs :func:`load_checkpoint` as mmengine's
loader for local paths and for ``http://`` / ``https://``, so the runner's
``load_from``/``resume``, mmdet's ``init_detector`` and mmseg's
``init_model`` all go through it.
"""
import hashlib
import http.client
import json
import os
import os.path as osp
import pickle
import re
import struct
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from typing import Any, List, Optional, Union
from urllib.parse import urlparse

import numpy as np
import torch
import torch.hub

TRUST_ENV = 'MMKD_TRUST_CHECKPOINTS'


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs unpickling of objects outside the allow-list."""


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file is damaged: cut short, or not a checkpoint at all."""


def _corrupt(filename: str, reason: str) -> CorruptCheckpointError:
    return CorruptCheckpointError(
        f'checkpoint "{filename}" is corrupt or truncated: {reason}')


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
    used without a request. A new file is written to a temporary name in the
    cache dir, its size checked against the server's ``Content-Length``
    (when sent), and only then renamed to its final name, so an interrupted
    or truncated download never leaves a file that later passes as complete.

    Under ``torch.distributed`` (initialized, world size > 1) only local
    rank 0 of each node (``LOCAL_RANK``) downloads, with the one progress
    bar; the other ranks wait for it in a collective, then read the cached
    file. Every rank of the default process group must therefore call this
    for the same URL, as model building, ``load_from`` and ``init_weights``
    do. If a download fails, every rank raises the same ``OSError``.

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
    if _distributed():
        return _download_once_per_node(url, cache_dir, progress)
    return _download(url, cache_dir, progress)


def _distributed() -> bool:
    """Whether a default process group of more than one rank exists."""
    import torch.distributed as dist
    return (dist.is_available() and dist.is_initialized()
            and dist.get_world_size() > 1)


def _local_rank() -> int:
    """This process's rank on its node: ``LOCAL_RANK`` (torchrun, mmengine's
    slurm launcher and mmkd's tools set it), else mmengine's answer, else 0
    (the process then downloads for itself)."""
    if 'LOCAL_RANK' in os.environ:
        return int(os.environ['LOCAL_RANK'])
    try:
        from mmengine.dist import get_local_rank
        return int(get_local_rank())
    except Exception:  # mmengine has no local group: download here
        return 0


def _download_once_per_node(url: str, cache_dir: str, progress: bool) -> str:
    """:func:`_download` on local rank 0 of each node; the other ranks wait
    in an all-reduce of a success flag (every rank takes part), then read
    the cache. A failure on any node stops every rank with its message."""
    from mmengine.dist import all_gather_object, all_reduce, get_rank
    leader = _local_rank() == 0
    path, error = None, None
    if leader:
        try:
            path = _download(url, cache_dir, progress)
        except Exception as err:  # the other ranks must hear of it
            error = str(err) or repr(err)
    done = torch.tensor([0 if error else 1], dtype=torch.int32)
    all_reduce(done, op='min')  # the barrier: waits for every leader
    if not int(done.item()):
        raise _download_failure(url, all_gather_object(error))
    if leader:
        return path
    path = osp.join(cache_dir, cache_name(url))
    if not osp.isfile(path):
        warnings.warn(
            f'rank {get_rank()}: local rank 0 downloaded "{url}", but this '
            f'rank does not see it in its cache dir "{cache_dir}" (a '
            'different TORCH_HOME, or LOCAL_RANK not per node?); '
            'downloading it here too')
    return _download(url, cache_dir, progress=False)


def _download_failure(url: str, errors: List[Optional[str]]) -> OSError:
    """The one error every rank raises when a node's download failed."""
    rank, message = next((r, e) for r, e in enumerate(errors) if e)
    if url not in message:
        message = f'downloading checkpoint "{url}" failed: {message}'
    return OSError(f'{message} [on rank {rank}, which downloads for the '
                   f'ranks of its node; all {len(errors)} ranks stop here]')


def _download(url: str, cache_dir: str, progress: bool) -> str:
    """Download ``url`` into ``cache_dir`` (unless there); return the path."""
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


_ZIP_MAGIC = b'PK\x03\x04'
_ZIP_LOCAL_HEADER = 30  # bytes before a record's name and extra field


def check_checkpoint_file(filename: Union[str, os.PathLike]) -> None:
    """Check that a local checkpoint file is whole, without loading it.

    * a torch zip archive (``torch.save``'s format since torch 1.6) must
      open as a zip (its central directory is at the end: a cut file has
      none), hold a ``data.pkl`` and every record must fit in the file;
    * a legacy torch file must start with a pickle protocol header (or be
      a tar archive, torch's oldest format);
    * a ``.safetensors`` file needs its header and every tensor it
      declares to fit in the file.

    It reads the headers only (cheap for any size), so it catches cut-off
    or foreign files, not bytes flipped inside a record.

    Args:
        filename (str | PathLike): An existing local file.

    Raises:
        CorruptCheckpointError: naming the file and what is wrong
            ("corrupt or truncated").
    """
    filename = os.fspath(filename)
    size = osp.getsize(filename)
    with open(filename, 'rb') as f:
        head = f.read(262)
    if size == 0:
        reason = 'the file is empty'
    elif filename.endswith('.safetensors'):
        reason = _safetensors_problem(filename, size)
    elif head.startswith(_ZIP_MAGIC):
        reason = _zip_problem(filename, size)
    elif (len(head) >= 2 and head[0] == pickle.PROTO[0] and 2 <= head[1] <=
          pickle.HIGHEST_PROTOCOL) or head[257:262] == b'ustar':
        reason = None
    else:
        reason = (f'its {size} bytes start with neither a zip archive, a '
                  'pickle protocol header nor a tar header '
                  f'(first bytes: {head[:8]!r})')
    if reason:
        raise _corrupt(filename, reason)


def _zip_problem(filename: str, size: int) -> Optional[str]:
    """What is wrong with a torch zip archive, or None."""
    try:
        with zipfile.ZipFile(filename) as archive:
            records = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as err:
        return (f'not a readable zip archive ({err}; the file has {size} '
                'bytes)')
    if not any(r.filename == 'data.pkl' or r.filename.endswith('/data.pkl')
               for r in records):
        return 'the zip archive has no data.pkl (not a torch checkpoint)'
    with open(filename, 'rb') as f:
        for record in records:
            f.seek(record.header_offset)
            header = f.read(_ZIP_LOCAL_HEADER)
            if len(header) < _ZIP_LOCAL_HEADER or not header.startswith(
                    _ZIP_MAGIC):
                return (f'record "{record.filename}" has no header at byte '
                        f'{record.header_offset} (the file has {size} bytes)')
            name_len, extra_len = struct.unpack('<HH', header[26:30])
            end = (record.header_offset + _ZIP_LOCAL_HEADER + name_len +
                   extra_len + record.compress_size)
            if end > size:
                return (f'record "{record.filename}" ends at byte {end}, '
                        f'the file has {size} bytes')
    return None


def _safetensors_problem(filename: str, size: int) -> Optional[str]:
    """What is wrong with a ``.safetensors`` file's layout, or None."""
    with open(filename, 'rb') as f:
        raw = f.read(8)
        if len(raw) < 8:
            return f'{size} bytes: no 8-byte safetensors header length'
        length = struct.unpack('<Q', raw)[0]
        if length > size - 8:
            return (f'the safetensors header claims {length} bytes, the file '
                    f'has {size - 8} after it')
        try:
            header = json.loads(f.read(length))
            ends = [
                v['data_offsets'][1] for k, v in header.items()
                if k != '__metadata__'
            ]
        except (ValueError, TypeError, KeyError, IndexError,
                AttributeError) as err:
            return f'the safetensors header is not readable ({err!r})'
    need = 8 + length + max(ends, default=0)
    if need > size:
        return f'the tensors end at byte {need}, the file has {size} bytes'
    return None


def _load_safetensors(filename: str, map_location: Any) -> dict:
    """A ``.safetensors`` file (Hugging Face / timm) as a state dict."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    device = map_location if isinstance(map_location, str) else 'cpu'
    try:
        return load_file(filename, device=device)
    except SafetensorError as err:
        raise _corrupt(filename, f'safetensors: {err}') from None


def _torch_reason(err: BaseException) -> str:
    """torch's own reason for a failed load (not its advice to trust the
    file)."""
    text = str(err)
    if isinstance(err, EOFError):
        return f'the data ends early (EOFError{": " + text if text else ""})'
    found = re.search(r'WeightsUnpickler error: (.*)', text)
    return found.group(1).strip() if found else (
        text.splitlines()[0] if text else repr(err))


def _disallowed_globals(filename: str,
                        err: pickle.UnpicklingError) -> Optional[List[str]]:
    """The globals outside the allow-list, read from the file's pickle (zip
    archives) or torch's message (legacy files); None when the pickle cannot
    be read at all (a damaged file)."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
    except Exception:  # a legacy file, or an unreadable pickle
        names = None
    found = re.findall(r'GLOBAL ([\w.]+) was not an allowed global', str(err))
    return found if found and not names else names


def load_checkpoint(filename: Union[str, os.PathLike],
                    map_location: Optional[Any] = 'cpu') -> Any:
    """Load a local or ``http(s)://`` checkpoint under mmkd's policy.

    ``.safetensors`` files (tensors only, nothing to unpickle) are read with
    the ``safetensors`` package (a dependency of timm). Every file is first
    checked by :func:`check_checkpoint_file`.

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
        CorruptCheckpointError: The file is damaged: truncated, not a
            checkpoint, or a pickle that cannot be read (a ``RuntimeError``
            saying "corrupt or truncated", naming the file).
        UnsafeCheckpointError: The file is intact but holds objects outside
            the allow-list, and ``MMKD_TRUST_CHECKPOINTS=1`` is not set.
    """
    filename = os.fspath(filename)
    if is_url(filename):
        filename = download_checkpoint(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint file "{filename}" does not exist')
    check_checkpoint_file(filename)
    if filename.endswith('.safetensors'):  # tensors only: nothing to unpickle
        return _load_safetensors(filename, map_location)
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError) as err:  # e.g. a record cut short
        raise _corrupt(filename, _torch_reason(err)) from None
    except pickle.UnpicklingError as err:
        return _load_disallowed(filename, map_location, err)


def _load_disallowed(filename: str, map_location: Any,
                     err: pickle.UnpicklingError) -> Any:
    """After the weights-only load refused ``filename``: a damaged pickle is
    :class:`CorruptCheckpointError`; mmengine's runner checkpoints load;
    other objects load only under ``MMKD_TRUST_CHECKPOINTS=1``."""
    names = _disallowed_globals(filename, err)
    if names is None:
        raise _corrupt(filename, 'its pickle cannot be read '
                       f'({_torch_reason(err)})') from None
    mmengine_set = {_qualname(o) for o in _mmengine_safe_globals()}
    mmengine_set.add('builtins.getattr')
    if names and set(names) <= mmengine_set:  # an mmengine checkpoint
        try:
            with torch.serialization.safe_globals([getattr]):
                return torch.load(
                    filename, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as again:  # legacy: one name at a time
            err, names = again, _disallowed_globals(filename, again) or []
    names = [n for n in names if n not in mmengine_set]
    if os.environ.get(TRUST_ENV) == '1':
        warnings.warn(f'{TRUST_ENV}=1: loading "{filename}" with full '
                      'unpickling (weights_only=False)')
        return torch.load(
            filename, map_location=map_location, weights_only=False)
    what = ', '.join(names) if names else _torch_reason(err)
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
