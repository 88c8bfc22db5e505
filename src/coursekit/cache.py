"""Cache files: written atomically, read back only after they are validated.

Writing: ``save_record`` writes a dictionary to a temporary file beside the target and
renames it into place (``os.replace``), so a reader never sees a half-written file and a
crash mid-write leaves the previous file intact. It stores, beside the record, a sha256
digest of every tensor in it.

Reading: ``load_cached`` is the one loader of every cache (trained models, adversarial
pools, attack results, MNIST). It loads with ``torch.load(weights_only=True)``, recomputes
the digest, and checks the record against a *schema*: the keys it must have and, for
each tensor, its dtype and shape, where a shape entry is an int (that size), None (any
size) or a name (the same size wherever that name appears, e.g. ``"N"`` for the number of
images). A file that is corrupted (bytes that ``torch.load`` cannot read back: the errors
listed in ``CORRUPTION``) or does not fit (``CacheMismatch``) is removed with a warning and
``None`` is returned, so that the caller rebuilds it; a file that cannot be read (an OSError) is
kept. Any other exception (a bug in a schema or in this module) propagates: it is not taken
for corruption, and the file is kept.

(``records.load_record`` is another thing: it reads a recorded paper-scale table.)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "CORRUPTION",
    "DIGEST_KEY",
    "CacheMismatch",
    "atomic_save",
    "check_record",
    "key_digest",
    "load_cached",
    "record_digest",
    "save_record",
    "tensor_digest",
]

DIGEST_KEY = "_sha256"


class CacheMismatch(ValueError):
    """A cache record does not fit its schema (or its digest)."""


# What ``torch.load(weights_only=True)`` raises on bytes that are not a record (measured on
# random, truncated, empty and bit-flipped files and on a pickled object): not a pickle or a
# forbidden type, a broken zip archive, a file cut short, bytes that do not decode.
CORRUPTION = (pickle.UnpicklingError, RuntimeError, EOFError, UnicodeDecodeError)


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


def record_digest(record: Any) -> str:
    """sha256 over every tensor in a nested dict/list record, in a fixed order of keys."""
    hasher = hashlib.sha256()

    def walk(value, where: str) -> None:
        if isinstance(value, torch.Tensor):
            hasher.update(f"{where}={tensor_digest(value)};".encode())
        elif isinstance(value, Mapping):
            for key in sorted(value, key=str):
                if key != DIGEST_KEY:
                    walk(value[key], f"{where}/{key}")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(item, f"{where}[{i}]")

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
    """Write the dictionary ``record`` atomically, with the digest of its tensors."""
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


def load_cached(
    path: Path, schema: Mapping[str, Any], sizes: dict | None = None, *, upgrade_legacy: bool = False
) -> dict | None:
    """The validated record at ``path``, or None if it is absent or does not fit.

    The record must carry the digest ``save_record`` wrote, match it, and fit ``schema``
    (see ``check_record``; ``sizes`` fixes named sizes in advance, e.g. ``{"N": len(x)}``).
    A file whose bytes were read and proved corrupt (not a record, wrong digest, wrong
    schema) is removed with a warning, so that the caller rebuilds it; a file that could not
    be read (an OSError: a transient error of a network or Google Drive mount, a permission)
    is kept, with a warning, and None is returned. ``upgrade_legacy=True`` (trained models,
    whose caches predate the digest): a record without a digest that fits the schema is
    accepted once and rewritten with its digest.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        data = path.read_bytes()
    except OSError as error:  # not proof of corruption: keep the file
        warnings.warn(
            f"cache file {path} could not be read ({error!s:.160}); rebuilding, the file is kept", stacklevel=2
        )
        return None
    try:
        record = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        legacy = isinstance(record, dict) and DIGEST_KEY not in record and upgrade_legacy
        if not legacy:
            if not isinstance(record, dict) or DIGEST_KEY not in record:
                raise CacheMismatch("no stored digest (written by an older version?)")
            if record[DIGEST_KEY] != record_digest(record):
                raise CacheMismatch("the stored digest does not match the tensors (corrupted file)")
        check_record(record, schema, dict(sizes or {}))
    except (CacheMismatch, *CORRUPTION) as error:  # the bytes were read and are not a valid record
        warnings.warn(f"cache file {path} is not usable ({error!s:.160}); rebuilding it", stacklevel=2)
        path.unlink(missing_ok=True)
        return None
    if legacy:
        save_record(record, path)
        return record
    record.pop(DIGEST_KEY)
    return record
