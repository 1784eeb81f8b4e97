"""Declared layouts of a saved model's arrays, and the checks ``Model.load`` runs before any array
reaches a kernel.

Each model class declares, for every array it saves, an :class:`ArraySpec`: the kind of values
(``int``, ``float``, ``ids``, ``bool``, ``str``), the shape — whose entries are numbers, ``None``
(any length) or *symbols* such as ``"n_users"`` or ``"n_items+1"`` that must agree across arrays —,
the range of integer values (``lo <= v < hi``, bounds may be symbols), whether floats must be finite,
and whether the array is a CSR ``indptr`` over another array (starts at 0, never decreases, ends at
that array's length). :func:`check_arrays` binds the symbols from the shapes in declaration order,
then checks every array against its spec, raising :class:`~tastebud.exceptions.FormatError` that
names the file and the array. :func:`check_json` does the same for the model's ``extra`` JSON.

Example (the arrays every recommender saves)::

    {"users_ids": ids("n_users"), "items_ids": ids("n_items"),
     "seen_indptr": indptr("n_users", of="seen_indices"),
     "seen_indices": index(None, hi="n_items")}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NoReturn, Sequence

import numpy as np

from .exceptions import FormatError

Dim = int | str | None
Bound = int | float | str | None

_KIND_DTYPES = {"int": "iu", "float": "f", "ids": "iuU", "bool": "b", "str": "U", "number": "iuf"}
_SYM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*([+-]\s*\d+)?$")
_INT64_MAX = np.iinfo(np.int64).max
#: largest magnitude of a saved float (beyond it float32 arithmetic in the models overflows to inf)
FLOAT_LIMIT = 1e30


@dataclass(frozen=True)
class ArraySpec:
    """What one saved array must be (see the module docstring)."""

    kind: str
    shape: tuple[Dim, ...] = ()
    lo: Bound = None
    hi: Bound = None
    finite: bool = True
    indptr_of: str | None = None
    optional: bool = False
    unique: bool = False


def ids(n: Dim, optional: bool = False) -> ArraySpec:
    """External ids (int64 or unicode, distinct) of ``n`` users/items."""
    return ArraySpec("ids", (n,), unique=True, optional=optional)


def index(n: Dim, hi: Bound, lo: Bound = 0, optional: bool = False) -> ArraySpec:
    """A 1-D integer array of indices in ``[lo, hi)``."""
    return ArraySpec("int", (n,), lo=lo, hi=hi, optional=optional)


def indptr(rows: str, of: str, optional: bool = False) -> ArraySpec:
    """CSR row pointers of ``rows`` rows over the array ``of``."""
    return ArraySpec("int", (f"{rows}+1",), indptr_of=of, optional=optional)


def floats(*shape: Dim, finite: bool = True, optional: bool = False) -> ArraySpec:
    """A float array of ``shape`` (finite unless told otherwise)."""
    return ArraySpec("float", tuple(shape), finite=finite, optional=optional)


def csr(prefix: str, rows: str, cols: Bound, finite: bool = True) -> dict[str, ArraySpec]:
    """A sparse ``rows`` × ``cols`` matrix saved as ``<prefix>_indptr`` / ``_indices`` / ``_data``
    (CSR row pointers over the indices, column indices in ``[0, cols)``, one float per index)."""
    nnz = f"nnz_{prefix}"
    return {f"{prefix}_indptr": indptr(rows, of=f"{prefix}_indices"), f"{prefix}_indices": index(nnz, hi=cols),
            f"{prefix}_data": floats(nnz, finite=finite)}


def counts(n: Dim, optional: bool = False) -> ArraySpec:
    """A 1-D array of non-negative integer counts."""
    return ArraySpec("int", (n,), lo=0, optional=optional)


class _Checker:
    def __init__(self, path: Any, arrays: Mapping[str, np.ndarray], symbols: Mapping[str, int] | None):
        self.path = path
        self.arrays = arrays
        self.sym: dict[str, int] = dict(symbols or {})

    def fail(self, name: str, msg: str) -> NoReturn:
        raise FormatError(f"{self.path}: array {name!r} {msg}")

    def resolve(self, expr: Bound, name: str) -> int | float | None:
        if expr is None or isinstance(expr, (int, float)):
            return expr
        m = _SYM.match(expr)
        if not m or m.group(1) not in self.sym:
            raise RuntimeError(f"array spec of {name!r}: unbound symbol {expr!r}")  # a bug in a declaration
        return self.sym[m.group(1)] + (int(m.group(2).replace(" ", "")) if m.group(2) else 0)

    def bind_shape(self, name: str, spec: ArraySpec, a: np.ndarray) -> None:
        if a.ndim != len(spec.shape):
            self.fail(name, f"must have {len(spec.shape)} dimension(s) {self._show(spec.shape)}, got shape {a.shape}")
        for d, (want, got) in enumerate(zip(spec.shape, a.shape)):
            if want is None:
                continue
            if isinstance(want, int):
                if got != want:
                    self.fail(name, f"must have shape {self._show(spec.shape)}, got {a.shape}")
                continue
            m = _SYM.match(want)
            if not m:
                raise RuntimeError(f"array spec of {name!r}: bad dimension {want!r}")
            sym, off = m.group(1), int(m.group(2).replace(" ", "")) if m.group(2) else 0
            if sym in self.sym:
                if got != self.sym[sym] + off:
                    self.fail(name, f"has {got} entries along axis {d}, but {want} = {self.sym[sym] + off} "
                                    f"(from the other arrays)")
            else:
                if got - off < 0:
                    self.fail(name, f"has {got} entries along axis {d}, too few for {want}")
                self.sym[sym] = got - off

    def _show(self, shape: Sequence[Dim]) -> str:
        return "(" + ", ".join("*" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"

    def check_values(self, name: str, spec: ArraySpec, a: np.ndarray) -> None:
        if a.dtype.kind not in _KIND_DTYPES[spec.kind]:
            self.fail(name, f"must hold {spec.kind} values, got dtype {a.dtype}")
        if a.dtype.kind in "iu" and a.size:
            lo, hi = self.resolve(spec.lo, name), self.resolve(spec.hi, name)
            if spec.kind == "ids":
                lo = hi = None
            amin, amax = int(a.min()), int(a.max())
            if lo is not None and amin < lo:
                self.fail(name, f"holds {amin}, below its lower bound {spec.lo} = {lo}")
            if hi is not None and amax >= hi:
                self.fail(name, f"holds {amax}, out of range: must be < {spec.hi} = {hi}")
        if a.dtype.kind == "f" and a.size:
            if spec.finite and not (np.abs(a) <= FLOAT_LIMIT).all():
                bad = np.flatnonzero(~(np.abs(a.ravel()) <= FLOAT_LIMIT))
                self.fail(name, f"holds {float(a.ravel()[bad[0]])!r} at flat position {int(bad[0])} ({len(bad)} such "
                                f"value(s)); saved models hold finite numbers of magnitude at most {FLOAT_LIMIT:g}")
            lo, hi = self.resolve(spec.lo, name), self.resolve(spec.hi, name)
            if lo is not None and np.nanmin(a) < lo:
                self.fail(name, f"holds {np.nanmin(a)!r}, below its lower bound {spec.lo}")
            if hi is not None and np.nanmax(a) > hi:
                self.fail(name, f"holds {np.nanmax(a)!r}, above its upper bound {spec.hi}")
        if spec.unique and a.size > 1:
            srt = np.sort(a, kind="stable")
            dup = np.flatnonzero(srt[1:] == srt[:-1])
            if len(dup):
                self.fail(name, f"holds the id {srt[dup[0]]!r} more than once")
        if spec.indptr_of is not None:
            n_of = len(self.arrays[spec.indptr_of]) if spec.indptr_of in self.arrays else 0
            if a.size == 0 or a[0] != 0:
                self.fail(name, "must start at 0 (CSR row pointers)")
            if a.size > 1 and (np.diff(a) < 0).any():
                r = int(np.flatnonzero(np.diff(a) < 0)[0])
                self.fail(name, f"decreases at row {r} ({a[r]} then {a[r + 1]}); CSR row pointers never decrease")
            if a[-1] != n_of:
                self.fail(name, f"ends at {a[-1]} but {spec.indptr_of!r} holds {n_of} entries")


def check_arrays(path: Any, arrays: Mapping[str, np.ndarray], specs: Mapping[str, ArraySpec],
                 symbols: Mapping[str, int] | None = None, allow_extra: Callable[[str], bool] | None = None) -> dict[str, int]:
    """Check ``arrays`` against ``specs`` (in declaration order, which binds the shape symbols);
    returns the bound symbols. Missing required arrays and arrays no spec declares (unless
    ``allow_extra(name)``) are refused."""
    c = _Checker(path, arrays, symbols)
    for name, spec in specs.items():
        if name not in arrays:
            if not spec.optional:
                raise FormatError(f"{path}: required array {name!r} is missing")
            continue
        c.bind_shape(name, spec, arrays[name])
    for name in arrays:
        if name not in specs and not (allow_extra and allow_extra(name)):
            raise FormatError(f"{path}: unexpected array {name!r} (not part of this model's saved layout)")
    for name, spec in specs.items():
        if name in arrays:
            a = arrays[name]
            if a.dtype.kind == "u" and a.size and a.max() > _INT64_MAX:
                c.fail(name, f"holds {a.max()}, beyond the int64 range")
            a = _native(a)
            c.check_values(name, spec, a)
            if isinstance(arrays, dict):
                arrays[name] = a
    return c.sym


def _native(a: np.ndarray) -> np.ndarray:
    """Integers as int64/int32 and floats as float32/float64 (the dtypes kernels are compiled for)."""
    if a.dtype.kind == "u" or (a.dtype.kind == "i" and a.dtype.itemsize < 4):
        return a.astype(np.int64)
    if a.dtype.kind == "f" and a.dtype.itemsize not in (4, 8):
        return a.astype(np.float64 if a.dtype.itemsize > 8 else np.float32)
    return a


# ---------------------------------------------------------------------- JSON
_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, list),
    "dict": lambda v: isinstance(v, dict),
    "any": lambda v: True,
}


def check_json(path: Any, where: str, value: Any, spec: Mapping[str, Any]) -> None:
    """Check a JSON object against ``spec``: key → type name (``"int"``, ``"number"``, ``"str"``,
    ``"bool"``, ``"list"``, ``"dict"``, ``"any"``; a trailing ``?`` allows null, a leading ``~``
    makes the key optional), a tuple of allowed values, or a nested spec (a dict)."""
    if not isinstance(value, dict):
        raise FormatError(f"{path}: meta.json {where} must be a JSON object, got {type(value).__name__}")
    for key, t in spec.items():
        optional = isinstance(t, str) and t.startswith("~")
        if key not in value:
            if optional or (isinstance(t, dict) and t.get("~") is True):
                continue
            raise FormatError(f"{path}: meta.json {where} has no {key!r} field")
        v = value[key]
        if isinstance(t, dict):
            check_json(path, f"{where}.{key}", v, {k: s for k, s in t.items() if k != "~"})
            continue
        if isinstance(t, tuple):
            if not any(v == a and type(v) is type(a) for a in t):
                raise FormatError(f"{path}: meta.json {where}.{key} must be one of {list(t)}, got {v!r}")
            continue
        name = t.lstrip("~")
        nullable = name.endswith("?")
        name = name.rstrip("?")
        if v is None and nullable:
            continue
        if not _JSON_TYPES[name](v):
            raise FormatError(f"{path}: meta.json {where}.{key} must be a JSON {name}{' or null' if nullable else ''}, "
                              f"got {type(v).__name__} {str(v)[:40]!r}")
