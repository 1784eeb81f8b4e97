"""Saving and loading models: a zip file holding ``meta.json`` and one ``.npy`` per array.

No pickling anywhere: metadata is JSON and arrays are plain numeric or string ``.npy`` members,
so a model file from elsewhere cannot execute code. A model file is untrusted input, read as
carefully as a CSV:

* the container: anything the zip reader trips over (a truncated file, a CRC mismatch, an
  unsupported or encrypted member, duplicate member names) is a :class:`FormatError` naming the
  file and the member;
* sizes: the members read (``meta.json`` and the listed arrays) may hold at most
  ``max_uncompressed`` bytes once decompressed — by default :data:`RATIO` times the file's size,
  at least :data:`FLOOR` bytes; the environment variable ``TASTEBUD_MAX_UNCOMPRESSED`` (bytes)
  or the ``max_uncompressed`` argument of ``tastebud.load`` overrides it. A deflate bomb is
  refused before anything is decompressed;
* arrays: each ``.npy`` header is read first (:func:`numpy.lib.format.read_magic` and
  ``read_array_header_*``); only boolean, integer, floating and unicode dtypes are accepted, and
  the shape must account for exactly the bytes the member holds, so a header that claims a
  shape of 10¹² elements is refused without allocating anything;
* ``meta.json``: strict UTF-8, valid JSON of bounded nesting depth, and the fields below with
  their JSON types.

What the arrays must hold (shapes, dtypes, index ranges consistent with the id maps, finite
numbers) is declared by each model class and checked by :mod:`tastebud.array_specs` before any
array reaches a kernel (see ``Model.load``).

Writes go to a temporary file ``.<name>.tastebud-tmp.<host>.<pid>.<token>`` in the target
directory, which is fsynced, moved into place with an atomic ``os.replace``, and the directory
fsynced. Temporaries left by writers that died (their pid is gone, or older than
:data:`STALE_SECONDS`) are removed by the next save to the same target.

meta.json holds: ``format`` ("tastebud-model"), ``format_version``, ``class`` (registry name),
``library_version``, ``params`` (constructor arguments), ``extra`` (model-specific JSON) and
``arrays`` (the array names).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import socket
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .exceptions import FormatError

FORMAT = "tastebud-model"
FORMAT_VERSION = 1

#: default limit on the bytes read from a model file, relative to its size on disk (files are
#: written uncompressed, so a genuine file is about 1×; recompressed ones rarely exceed a few ×)
RATIO = 16
#: ... but never below this many bytes
FLOOR = 64 << 20
#: environment variable overriding the default limit (bytes)
LIMIT_ENV = "TASTEBUD_MAX_UNCOMPRESSED"
#: largest ``meta.json`` read (bytes) and deepest JSON nesting accepted
META_MAX_BYTES = 64 << 20
JSON_MAX_DEPTH = 64
#: temporaries of writers that are not known to be alive are removed after this many seconds
STALE_SECONDS = 6 * 3600

TMP_TAG = ".tastebud-tmp."
_CHUNK = 1 << 20
_DTYPE_KINDS = "biufU"


# ====================================================================== writing
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


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there: rely on age only
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's) or cannot tell
    return True


def temp_prefix(target: Path) -> str:
    """File-name prefix of the temporaries written while saving to ``target``."""
    return f".{target.name}{TMP_TAG}"


def clean_stale_temps(target: str | os.PathLike, now: float | None = None) -> list[Path]:
    """Remove temporaries left next to ``target`` by saves that never finished: those whose
    writer (same host) is no longer running, and any older than :data:`STALE_SECONDS`. A temp of
    a writer that is still running is kept. Returns the removed paths."""
    target = Path(target)
    prefix = temp_prefix(target)
    legacy = f".{target.name}."  # tempfile.mkstemp names of tastebud <= 0.x: .<name>.XXXXXXXX.tmp
    now = time.time() if now is None else now
    host = _host_tag()
    removed = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for e in entries:
        name = e.name
        if name.startswith(prefix):
            parts = name[len(prefix):].split(".")
            stale = len(parts) != 3 or not parts[1].isdigit()
            if not stale:
                stale = parts[0] == host and not _pid_alive(int(parts[1]))
        elif name.startswith(legacy) and name.endswith(".tmp") and len(name) == len(legacy) + 12:
            stale = False  # pid unknown: age only
        else:
            continue
        try:
            if not stale:
                stale = now - e.stat(follow_symlinks=False).st_mtime > STALE_SECONDS
            if stale and e.is_file(follow_symlinks=False):
                os.unlink(e.path)
                removed.append(Path(e.path))
        except FileNotFoundError:
            pass  # another save removed it first
        except OSError:
            pass
    return removed


def _fsync_dir(d: Path) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:  # Windows, or a directory we may not open
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_model_file(path: str | os.PathLike, cls_name: str, params: dict, arrays: dict[str, np.ndarray], extra: dict | None = None) -> Path:
    """Atomically and durably write a model file (see the module docstring)."""
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
    clean_stale_temps(p)
    tmp = p.parent / f"{temp_prefix(p)}{_host_tag()}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
                zf.writestr("meta.json", json.dumps(meta, indent=1, sort_keys=True))
                for name, arr in arrays.items():
                    a = np.asarray(arr)
                    if a.dtype == object:
                        raise TypeError(f"array {name!r} has dtype object; convert it to a numeric or string array")
                    buf = io.BytesIO()
                    np.save(buf, a, allow_pickle=False)
                    zf.writestr(f"arrays/{name}.npy", buf.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(p.parent)
    return p


# ====================================================================== reading
def uncompressed_limit(file_size: int, max_uncompressed: int | None = None) -> int:
    """Bytes a model file of ``file_size`` bytes may expand to: ``max_uncompressed`` if given,
    else ``$TASTEBUD_MAX_UNCOMPRESSED``, else ``max(RATIO * file_size, FLOOR)``."""
    if max_uncompressed is None:
        env = os.environ.get(LIMIT_ENV, "").strip()
        if env:
            try:
                max_uncompressed = int(float(env))
            except ValueError:
                raise ValueError(f"{LIMIT_ENV}={env!r} is not a number of bytes") from None
    if max_uncompressed is None:
        return max(RATIO * int(file_size), FLOOR)
    if isinstance(max_uncompressed, bool) or not isinstance(max_uncompressed, (int, np.integer)) or max_uncompressed < 1:
        raise ValueError(f"max_uncompressed must be a positive number of bytes, got {max_uncompressed!r}")
    return int(max_uncompressed)


def _json_depth_ok(x: Any, limit: int) -> bool:
    stack = [(x, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            if d > limit:
                return False
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return True


def _read_meta(p: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> dict:
    if info.file_size > min(limit, META_MAX_BYTES):
        raise FormatError(f"{p}: meta.json claims {info.file_size} bytes (limit {min(limit, META_MAX_BYTES)})")
    raw = _read_member(p, zf, info, "meta.json")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(f"{p}: meta.json is not valid UTF-8 ({e})") from None
    try:
        meta = json.loads(text)
    except RecursionError:
        raise FormatError(f"{p}: meta.json is nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, or an integer too long to convert
        raise FormatError(f"{p}: meta.json is not valid JSON: {e}") from None
    if not _json_depth_ok(meta, JSON_MAX_DEPTH):
        raise FormatError(f"{p}: meta.json is nested deeper than {JSON_MAX_DEPTH} levels")
    if not isinstance(meta, dict):
        raise FormatError(f"{p}: meta.json must hold a JSON object, got {type(meta).__name__}")
    if meta.get("format") != FORMAT:
        raise FormatError(f"{p}: not a tastebud model (format={meta.get('format')!r})")
    v = meta.get("format_version")
    if not isinstance(v, int) or isinstance(v, bool) or v != FORMAT_VERSION:
        raise FormatError(f"{p}: unsupported format_version {v!r} (this tastebud reads {FORMAT_VERSION})")
    for field, typ, required in (("class", str, True), ("params", dict, True), ("extra", dict, False),
                                 ("arrays", list, False), ("library_version", str, False)):
        if field not in meta:
            if required:
                raise FormatError(f"{p}: meta.json has no {field!r} field")
            continue
        if not isinstance(meta[field], typ):
            raise FormatError(f"{p}: meta.json field {field!r} must be a JSON {typ.__name__}, got {type(meta[field]).__name__}")
    meta.setdefault("extra", {})
    meta.setdefault("arrays", [])
    names = meta["arrays"]
    for n in names:
        if not isinstance(n, str) or not n or len(n) > 512 or "\x00" in n:
            raise FormatError(f"{p}: meta.json 'arrays' holds an invalid array name {n!r}")
    if len(set(names)) != len(names):
        raise FormatError(f"{p}: meta.json 'arrays' lists an array twice")
    for k in meta["params"]:
        if not k.isidentifier():
            raise FormatError(f"{p}: meta.json 'params' holds an invalid parameter name {k!r}")
    return meta


def _read_member(p: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, what: str, n: int | None = None,
                 fh: Any = None) -> bytes:
    """Read (the rest of) a member, turning every failure of the zip reader into FormatError."""
    try:
        if fh is None:
            with zf.open(info) as f:
                return f.read()
        return fh.read(n)
    except FormatError:
        raise
    except MemoryError:
        raise
    except Exception as e:  # zip / zlib / OS errors on a malformed member
        raise FormatError(f"{p}: {what} cannot be read ({type(e).__name__}: {e})") from None


def _read_npy(p: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, limit: int) -> np.ndarray:
    what = f"array {name!r} ({info.filename})"
    try:
        fh = zf.open(info)
    except Exception as e:
        raise FormatError(f"{p}: {what} cannot be read ({type(e).__name__}: {e})") from None
    with fh:
        try:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh, max_header_size=10000)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh, max_header_size=10000)
            else:
                raise ValueError(f"unsupported .npy version {version}")
            header_len = fh.tell()
        except FormatError:
            raise
        except MemoryError:
            raise
        except Exception as e:
            raise FormatError(f"{p}: {what} has no valid .npy header ({type(e).__name__}: {e})") from None
        dtype = np.dtype(dtype)
        if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None or dtype.kind not in _DTYPE_KINDS:
            raise FormatError(f"{p}: {what} has dtype {dtype.str!r} and cannot be read safely; only boolean, integer, "
                              "float and unicode arrays are allowed (never pickled objects)")
        if dtype.itemsize == 0:
            raise FormatError(f"{p}: {what} has a zero-width dtype {dtype.str!r}")
        count = 1
        for d in shape:
            if d > limit:
                raise FormatError(f"{p}: {what} claims a dimension of {d} (shape {shape})")
            count *= d
        nbytes = count * dtype.itemsize
        held = info.file_size - header_len
        if nbytes != held:
            raise FormatError(f"{p}: {what} header claims shape {shape} of {dtype.str} ({nbytes} bytes) "
                              f"but the member holds {held} bytes")
        arr = np.empty(count, dtype=dtype)  # its size is within the limit: checked above
        raw = arr.view(np.uint8)
        pos = 0
        while pos < nbytes:  # in chunks, straight into the array (no whole-member bytes object)
            chunk = _read_member(p, zf, info, what, min(_CHUNK, nbytes - pos), fh)
            if not chunk:
                raise FormatError(f"{p}: {what} is truncated ({pos} of {nbytes} bytes)")
            raw[pos:pos + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
            pos += len(chunk)
        # reading exactly to the end of the member makes the zip reader check its CRC
        if _read_member(p, zf, info, what, 1, fh):
            raise FormatError(f"{p}: {what} holds more bytes than its header says")
    if fortran:
        arr = np.ascontiguousarray(arr.reshape(shape[::-1]).T)
    else:
        arr = arr.reshape(shape)
    if not dtype.isnative:
        arr = arr.astype(dtype.newbyteorder("="))
    return arr


def read_model_file(path: str | os.PathLike, max_uncompressed: int | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a model file with the container checks of the module docstring; returns
    ``(meta, arrays)``. Every defect is a :class:`FormatError` naming the file (and member)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such model file: {p}")
    if p.is_dir():
        raise FormatError(f"{p} is a directory, not a tastebud model file")
    limit = uncompressed_limit(p.stat().st_size, max_uncompressed)
    try:
        zf = zipfile.ZipFile(p)
    except MemoryError:
        raise
    except Exception as e:  # BadZipFile, but also OSError/ValueError/EOFError... on mangled directories
        raise FormatError(f"{p} is not a tastebud model file (not a readable zip archive: {e})") from None
    with zf:
        infos = zf.infolist()
        seen: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            if info.filename in seen:
                raise FormatError(f"{p}: member {info.filename!r} appears twice in the archive")
            seen[info.filename] = info
        if "meta.json" not in seen:
            raise FormatError(f"{p} is not a tastebud model file (no meta.json)")
        wanted = [seen["meta.json"]]
        for info in wanted:
            _check_member(p, info)
        meta = _read_meta(p, zf, seen["meta.json"], limit)
        members = []
        for name in meta["arrays"]:
            entry = f"arrays/{name}.npy"
            if entry not in seen:
                raise FormatError(f"{p}: array {name!r} listed in meta.json is missing (no member {entry})")
            _check_member(p, seen[entry])
            members.append((name, seen[entry]))
        total = seen["meta.json"].file_size + sum(i.file_size for _, i in members)
        if total > limit:
            raise FormatError(f"{p}: its members expand to {total} bytes, more than the limit of {limit} bytes "
                              f"({RATIO}x the file size, at least {FLOOR}); if the file is trusted, raise it with "
                              f"load(..., max_uncompressed=...) or ${LIMIT_ENV}")
        arrays = {name: _read_npy(p, zf, info, name, limit) for name, info in members}
    return meta, arrays


def _check_member(p: Path, info: zipfile.ZipInfo) -> None:
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise FormatError(f"{p}: member {info.filename!r} uses compression method {info.compress_type}; "
                          "model files are stored or deflated")
    if info.flag_bits & 0x1:
        raise FormatError(f"{p}: member {info.filename!r} is encrypted")
