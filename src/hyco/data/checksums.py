"""Digests of a dataset file's content, written last and checked on every open: a file changed or damaged
after it was written is named, not read (`hyco.data.store`)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import h5py
import numpy as np


def _digest(*parts: bytes) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(len(part).to_bytes(8, "little"))
        hasher.update(part)
    return hasher.hexdigest()[:32]


def _value_bytes(value: Any) -> bytes:
    """A canonical byte form of an attribute or dataset value: type, shape and contents."""
    if isinstance(value, bytes):
        return b"bytes:" + value
    if isinstance(value, str):
        return b"str:" + value.encode()
    array = np.asarray(value)
    if array.dtype.kind == "O":  # variable-length strings in an array
        return json.dumps([v.decode() if isinstance(v, bytes) else str(v) for v in array.ravel()]).encode()
    return f"{array.dtype.str}{array.shape}".encode() + np.ascontiguousarray(array).tobytes()


def content_digests(file: h5py.File, own_attr: str, chunk_checked: str) -> dict[str, str]:
    """Digest of every attribute but the file's `own_attr` (where the digests go), every dataset's values
    (`chunk_checked`: its type, shape, chunks and filters; its values are covered chunk by chunk by fletcher32)
    and of the list of objects."""
    names: list[str] = []
    file.visit(names.append)
    out = {"layout": _digest(json.dumps(sorted(names)).encode())}
    for name, obj in [("", file), *((n, file[n]) for n in sorted(names))]:
        for attr in sorted(obj.attrs):
            if name == "" and attr == own_attr:
                continue
            out[f"attribute '{f'{name}:' if name else ''}{attr}'"] = _digest(_value_bytes(obj.attrs[attr]))
        if isinstance(obj, h5py.Dataset):
            layout = json.dumps([obj.dtype.str, list(obj.shape), list(obj.chunks or []), bool(obj.fletcher32),
                                 obj.compression]).encode()
            values = b"" if name == chunk_checked else _value_bytes(obj[()])
            out[f"dataset '{name}'"] = _digest(layout, values)
    return out


def checksum_problem(file: h5py.File, recorded: Any, own_attr: str, chunk_checked: str) -> str | None:
    """None when the file's content matches the digests `recorded` (its attribute `own_attr`), else what differs
    (named)."""
    try:
        stored = json.loads(recorded)
    except (TypeError, ValueError):
        stored = None
    if not isinstance(stored, dict) or not all(isinstance(v, str) for v in stored.values()):
        return f"attribute {own_attr!r} is damaged"
    current = content_digests(file, own_attr, chunk_checked)
    for key in sorted(set(stored) - set(current)):
        if key != "layout":
            return f"{key} missing"
    for key in sorted(set(stored) & set(current)):
        if key != "layout" and stored[key] != current[key]:
            return f"{key} changed since the file was written (checksum mismatch)"
    for key in sorted(set(current) - set(stored)):
        return f"unexpected {key} (not in the file when it was written)"
    if stored.get("layout") != current["layout"]:
        return "the file's objects changed since it was written (checksum mismatch)"
    return None
