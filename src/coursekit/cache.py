"""Cache files: written atomically, read back only after they are validated.

Writing: ``save_record`` writes a dictionary to a temporary file beside the target and
renames it into place (``os.replace``), so a reader never sees a half-written file and a
crash mid-write leaves the previous file intact. It stores, beside the record, a sha256
digest of *everything* in it (``record_digest``): every tensor (dtype, shape, bytes), every
number, string and other value, every key and the type and length of every container.

Reading: ``load_cached`` is the one loader of every cache (trained models, adversarial
pools, attack results, MNIST). It loads with ``torch.load(weights_only=True)``, recomputes
the digest, and checks the record against a *schema*: the keys it must have and, for
each tensor, its dtype and shape, where a shape entry is an int (that size), None (any
size) or a name (the same size wherever that name appears, e.g. ``"N"`` for the number of
images). A file whose bytes were read but are not a valid record (any error of ``torch.load``
on them, no digest, a digest that does not match, a record that does not fit its schema:
``CacheMismatch``) is removed with a warning and None is returned, so that the caller rebuilds
it; a file that cannot be read (an OSError) is kept, with a warning, and None is returned. The
digest covers everything that is returned, so a record that passes it is the record that was
saved, bit for bit. An exception raised by the schema check of such a record (a bug in a
schema, not corruption) propagates, and the file is kept.

(``records.load_record`` is another thing: it reads a recorded paper-scale table.)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "DIGEST_KEY",
    "PLAIN_VALUES",
    "CacheMismatch",
    "atomic_save",
    "check_record",
    "key_digest",
    "load_cached",
    "record_digest",
    "save_record",
    "tensor_digest",
]

DIGEST_KEY = "_record_sha256"  # "_sha256" before issue 31: a digest of the tensors only


class CacheMismatch(ValueError):
    """A cache record does not fit its schema (or its digest), or its bytes are not a record."""


# The values a record may hold besides tensors and containers (what weights_only loading admits).
PLAIN_VALUES = (type(None), bool, int, float, complex, str, bytes, torch.dtype, torch.device)


def key_digest(key: dict[str, Any]) -> str:
    """A short stable hash of a JSON-serialisable dictionary: the cache key of a result."""
    text = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tensor_digest(tensor: torch.Tensor) -> str:
    """sha256 (hex) of a tensor's dtype, shape and bytes."""
    data = tensor.detach().cpu().contiguous()
    hasher = hashlib.sha256(f"{data.dtype}{tuple(data.shape)}".encode())
    if data.numel():
        hasher.update(data.view(-1).view(torch.uint8).numpy().tobytes())
    return hasher.hexdigest()


def _leaf_text(value: Any, where: str) -> str:
    """What the digest reads of one value that is not a container: its type and its exact
    contents (a tensor's dtype, shape, bytes and requires_grad; ``repr`` of a number or string,
    which is exact for floats). TypeError for a value a record may not hold."""
    if isinstance(value, torch.Tensor):
        return f"tensor:{tensor_digest(value)}:{value.requires_grad}"
    if type(value) not in PLAIN_VALUES:
        raise TypeError(f"a cache record cannot hold {type(value).__name__} (at {where or 'the top'})")
    return f"{type(value).__name__}:{value!r}"


def record_digest(record: Any) -> str:
    """sha256 over everything in a nested dict/list/tuple record (the top-level ``DIGEST_KEY``
    left out): each container's type and length, each key, and each value (``_leaf_text``),
    every piece prefixed by its length so that no two records read the same. TypeError for a
    value other than a tensor, a container or one of PLAIN_VALUES."""
    hasher = hashlib.sha256()
    inside: set[int] = set()  # the containers being walked: one that holds itself is refused

    def add(text: str) -> None:
        hasher.update(f"{len(text)}:{text}".encode())

    def walk(value: Any, where: str) -> None:
        add(where)
        if not isinstance(value, (Mapping, list, tuple)):
            add(_leaf_text(value, where))
            return
        if id(value) in inside:
            raise TypeError(f"a cache record cannot hold itself (at {where})")
        inside.add(id(value))
        if isinstance(value, Mapping):
            keys = sorted((key for key in value if where or key != DIGEST_KEY), key=repr)
            add(f"{type(value).__name__}[{len(keys)}]")
            for key in keys:
                walk(value[key], f"{where}/{key!r}")
        else:  # a list or tuple (torch.Size too: its type name is kept)
            add(f"{type(value).__name__}[{len(value)}]")
            for i, item in enumerate(value):
                walk(item, f"{where}[{i}]")
        inside.discard(id(value))

    walk(record, "")
    return hasher.hexdigest()


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` ``obj`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(obj, stream)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is readable like any other file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_record(record: dict[str, Any], path: Path) -> None:
    """Write the dictionary ``record`` atomically, with the digest of everything in it
    (TypeError for a value ``record_digest`` does not cover, before anything is written)."""
    if not isinstance(record, dict):
        raise TypeError(f"record must be a dict, got {type(record).__name__}")
    atomic_save({**record, DIGEST_KEY: record_digest(record)}, path)


def check_record(record: Any, schema: Mapping[str, Any], sizes: dict | None = None) -> dict:
    """Check ``record`` against ``schema`` and return ``sizes`` (name → size) as bound.

    ``schema`` maps each required key to: a ``(dtype or None, shape)`` pair for a tensor
    (shape a tuple of int / None / name); a nested schema (a dict) for a dictionary; or a
    Python type (``str``, ``list``, ``dict``, ``int``, ...) for anything else. Raises
    ``CacheMismatch`` naming the key that does not fit.
    """
    sizes = {} if sizes is None else sizes
    if not isinstance(record, Mapping):
        raise CacheMismatch(f"expected a dict, got {type(record).__name__}")
    for key, spec in schema.items():
        if key not in record:
            raise CacheMismatch(f"missing key {key!r}")
        value = record[key]
        if isinstance(spec, Mapping):
            check_record(value, spec, sizes)
        elif isinstance(spec, tuple):
            _check_tensor(key, value, *spec, sizes)  # type: ignore[call-arg]
        elif not isinstance(value, spec):
            raise CacheMismatch(f"{key!r} must be a {spec.__name__}, got {type(value).__name__}")
    return sizes


def _check_tensor(key: str, value: Any, dtype, shape, sizes: dict) -> None:
    if not isinstance(value, torch.Tensor):
        raise CacheMismatch(f"{key!r} must be a tensor, got {type(value).__name__}")
    if dtype is not None and value.dtype != dtype:
        raise CacheMismatch(f"{key!r} must have dtype {dtype}, got {value.dtype}")
    if shape is None:
        return
    if value.dim() != len(shape):
        raise CacheMismatch(f"{key!r} must have {len(shape)} dimensions, got shape {tuple(value.shape)}")
    for size, expected in zip(value.shape, shape):
        if isinstance(expected, str):
            expected = sizes.setdefault(expected, size)
        if expected is not None and size != expected:
            raise CacheMismatch(f"{key!r} has shape {tuple(value.shape)}, expected {shape} with {sizes}")


def _read_record(data: bytes) -> dict:
    """The record in the bytes ``data`` of a cache file, its digest checked; CacheMismatch
    when they are not a record this module saved exactly (any error of ``torch.load``, no
    digest, a value no record holds, a digest that does not match)."""
    try:
        record = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any failure on bytes the course wrote is corruption:
        # besides UnpicklingError, RuntimeError and EOFError, single bit flips raise ValueError,
        # KeyError, IndexError, TypeError, ... (issue 31 item 4)
        raise CacheMismatch(f"torch.load cannot read it ({type(error).__name__}: {error!s:.120})") from None
    if not isinstance(record, dict) or DIGEST_KEY not in record:
        raise CacheMismatch("no stored digest (written by an older version?)")
    try:
        digest = record_digest(record)
    except Exception as error:  # noqa: BLE001 - a value no record holds (TypeError), or one torch cannot read
        raise CacheMismatch(f"its content cannot be digested ({type(error).__name__}: {error!s:.120})") from None
    if record[DIGEST_KEY] != digest:
        raise CacheMismatch("the stored digest does not match the content (corrupted file)")
    return record


def load_cached(path: Path, schema: Mapping[str, Any], sizes: dict | None = None) -> dict | None:
    """The validated record at ``path``, or None if it is absent or not usable.

    The record must carry the digest ``save_record`` wrote, match it (so every value returned
    is the one saved), and fit ``schema`` (see ``check_record``; ``sizes`` fixes named sizes in
    advance, e.g. ``{"N": len(x)}``). A file whose bytes were read and proved unusable (not a
    record, no or a wrong digest, wrong schema) is removed with a warning, so that the caller
    rebuilds it; a file that could not be read (an OSError: a transient error of a network or
    Google Drive mount, a permission) is kept, with a warning. Both return None: "rebuild".
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:  # not proof of corruption: keep the file
        warnings.warn(
            f"cache file {path} could not be read ({error!s:.160}); rebuilding, the file is kept", stacklevel=2
        )
        return None
    try:
        record = _read_record(data)
        check_record(record, schema, dict(sizes or {}))
    except CacheMismatch as error:  # the bytes were read and are not a valid record
        warnings.warn(f"cache file {path} is not usable ({error!s:.160}); rebuilding it", stacklevel=2)
        path.unlink(missing_ok=True)
        return None
    record.pop(DIGEST_KEY)
    return record
