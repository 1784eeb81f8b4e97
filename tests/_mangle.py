"""Tools for writing damaged or hostile model files from good ones (test_model_files.py, test_fuzz.py)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np


def members(path: str | Path) -> dict[str, bytes]:
    """The raw members of a model file, in archive order."""
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def meta(path: str | Path) -> dict:
    return json.loads(members(path)["meta.json"])


def arrays(path: str | Path) -> dict[str, np.ndarray]:
    return {n[len("arrays/"):-len(".npy")]: np.load(io.BytesIO(b), allow_pickle=False)
            for n, b in members(path).items() if n.startswith("arrays/")}


def npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def npy_header(shape: tuple, descr: str = "<f4") -> bytes:
    """A ``.npy`` header (magic + dict) claiming ``shape`` of ``descr``, with no data after it."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    return buf.getvalue()


def write(out: str | Path, raw: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(out, "w", compression=compression) as z:
        for n, b in raw.items():
            z.writestr(n, b)
    return Path(out)


def rewrite(src: str | Path, out: str | Path, *, arrays: dict[str, Any] | None = None, meta: Any = None,
            raw: dict[str, bytes | None] | None = None, compression: int = zipfile.ZIP_STORED) -> Path:
    """Copy ``src`` to ``out`` replacing arrays (None removes one; a new name is added to meta's
    list), the meta object (any JSON value), or raw member bytes."""
    m = members(src)
    md = json.loads(m["meta.json"])
    for name, a in (arrays or {}).items():
        key = f"arrays/{name}.npy"
        if a is None:
            m.pop(key, None)
        else:
            m[key] = npy(np.asarray(a))
            if isinstance(md, dict) and name not in md.get("arrays", []):
                md["arrays"] = sorted([*md["arrays"], name])
    if meta is not None:
        md = meta
    m["meta.json"] = json.dumps(md).encode()
    for k, b in (raw or {}).items():
        if b is None:
            m.pop(k, None)
        else:
            m[k] = b
    return write(out, m, compression)
