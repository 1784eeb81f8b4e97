"""Saving and loading models: a zip file holding ``meta.json`` and one ``.npy`` per array.

No pickling anywhere: arrays are loaded with ``allow_pickle=False`` and metadata is JSON, so a
model file from elsewhere cannot execute code. Writes go to a temporary file in the target
directory and are moved into place with an atomic ``os.replace``.

meta.json holds: ``format`` ("tastebud-model"), ``format_version``, ``class`` (registry name),
``library_version``, ``params`` (constructor arguments), and ``extra`` (model-specific JSON).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .exceptions import FormatError

FORMAT = "tastebud-model"
FORMAT_VERSION = 1


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    return x


def write_model_file(path: str | os.PathLike, cls_name: str, params: dict, arrays: dict[str, np.ndarray], extra: dict | None = None) -> Path:
    """Atomically write a model file."""
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"cannot save model to {p}: it is a directory")
    p.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "class": cls_name,
        "library_version": __version__,
        "params": _jsonable(params),
        "extra": _jsonable(extra or {}),
        "arrays": sorted(arrays),
    }
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            zf.writestr("meta.json", json.dumps(meta, indent=1, sort_keys=True))
            for name, arr in arrays.items():
                a = np.asarray(arr)
                if a.dtype == object:
                    raise TypeError(f"array {name!r} has dtype object; convert it to a numeric or string array")
                buf = io.BytesIO()
                np.save(buf, a, allow_pickle=False)
                zf.writestr(f"arrays/{name}.npy", buf.getvalue())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return p


def read_model_file(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and validate a model file; returns (meta, arrays)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such model file: {p}")
    try:
        zf = zipfile.ZipFile(p)
    except zipfile.BadZipFile as e:
        raise FormatError(f"{p} is not a tastebud model file (not a zip archive)") from e
    with zf:
        names = set(zf.namelist())
        if "meta.json" not in names:
            raise FormatError(f"{p} is not a tastebud model file (no meta.json)")
        try:
            meta = json.loads(zf.read("meta.json"))
        except json.JSONDecodeError as e:
            raise FormatError(f"{p}: meta.json is not valid JSON: {e}") from e
        if meta.get("format") != FORMAT:
            raise FormatError(f"{p}: not a tastebud model (format={meta.get('format')!r})")
        if meta.get("format_version") != FORMAT_VERSION:
            raise FormatError(f"{p}: unsupported format_version {meta.get('format_version')!r} (this tastebud reads {FORMAT_VERSION})")
        arrays: dict[str, np.ndarray] = {}
        for name in meta.get("arrays", []):
            entry = f"arrays/{name}.npy"
            if entry not in names:
                raise FormatError(f"{p}: array {name!r} listed in meta.json is missing")
            try:
                arrays[name] = np.load(io.BytesIO(zf.read(entry)), allow_pickle=False)
            except ValueError as e:
                raise FormatError(f"{p}: array {name!r} cannot be read safely: {e}") from e
    return meta, arrays
