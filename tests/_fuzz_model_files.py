"""Property-based fuzzing of the model file format, run by tests/test_fuzz.py in a child process
(a segfault in a kernel must fail the test, not kill the test run) whose address space is capped
(a huge allocation fails as MemoryError instead of taking the machine down).

Property: for every registered model, a saved file mangled in one way — bytes flipped or cut, an
array changed (a value set to an extreme, truncated, extended, retyped, reshaped, emptied), a
``.npy`` header lying about its shape, a ``meta.json`` value replaced or removed — either fails to
load with :class:`FormatError`, or loads into a model whose recommend / predict / similar items /
history calls all work.

    python tests/_fuzz_model_files.py ZOO_DIR N_EXAMPLES [SEED]
"""

from __future__ import annotations

import json
import sys
import tempfile
import traceback
from pathlib import Path

import numpy as np
import hypothesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
import _mangle as M  # noqa: E402
import _model_zoo as Z  # noqa: E402

import tastebud as tb  # noqa: E402
from tastebud.exceptions import FormatError, MissingExtraError  # noqa: E402

INTS = [-1, -(2**63), 2**63 - 1, 2**31, 10**9, 49_999_999, 0, 1, 2, 3, 7]
FLOATS = [np.nan, np.inf, -np.inf, 1e300, -1e300, 0.0, -0.0, 1.0, 1e-300]
STRS = ["", "a\x00", "x", "0", "1", "\U0001f600", "a" * 300]
JSON_ATOMS = st.one_of(st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.sampled_from(INTS),
                       st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8))
JSON = st.recursive(JSON_ATOMS, lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.text(max_size=5), c, max_size=3)),
                    max_leaves=6)


def mutate_array(a: np.ndarray, data: st.DataObject) -> np.ndarray:
    op = data.draw(st.sampled_from(["set", "set", "set", "truncate", "extend", "retype", "reshape", "empty", "scalar"]))
    if op == "set" and a.size:
        b = a.copy().reshape(-1)
        j = data.draw(st.integers(0, a.size - 1))
        kind = a.dtype.kind
        if kind in "iu":
            v = data.draw(st.sampled_from(INTS + [a.size, a.size - 1]))
            if kind == "u" and v < 0:
                v = 2**64 - 1
            try:
                b[j] = v
            except OverflowError:
                b = b.astype(np.int64) if v >= -(2**63) else b
                b[j] = max(v, -(2**63))
        elif kind == "f":
            b[j] = data.draw(st.sampled_from(FLOATS))
        elif kind == "U":
            b = b.astype(object)
            b[j] = data.draw(st.sampled_from(STRS + [str(x) for x in b[:2]]))
            b = b.astype(str)
        elif kind == "b":
            b[j] = not b[j]
        return b.reshape(a.shape)
    if op == "truncate" and a.ndim and len(a):
        return a[: data.draw(st.integers(0, len(a) - 1))]
    if op == "extend" and a.ndim:
        return np.concatenate([a, a[: data.draw(st.integers(1, 3))]]) if len(a) else np.zeros((1,) + a.shape[1:], a.dtype)
    if op == "retype":
        to = data.draw(st.sampled_from(["float32", "float64", "int32", "int64", "uint64", "int8", "bool", "<U3", ">f8", ">i8"]))
        try:
            return a.astype(to)
        except (ValueError, TypeError, OverflowError):
            return a
    if op == "reshape" and a.size:
        return data.draw(st.sampled_from([a.reshape(-1), a.reshape(1, -1), a.reshape(-1, 1), a.T.copy()]))
    if op == "empty":
        return np.zeros((0,) + a.shape[1:], a.dtype)
    if op == "scalar" and a.size:
        return np.asarray(a.reshape(-1)[0])
    return a


def mutate_json(md: object, data: st.DataObject) -> object:
    """Replace or remove one value somewhere in the JSON object ``md``."""
    md = json.loads(json.dumps(md))
    path = []
    node = md
    while isinstance(node, (dict, list)) and node and data.draw(st.booleans(), label="descend"):
        key = data.draw(st.sampled_from(sorted(node) if isinstance(node, dict) else list(range(len(node)))))
        path.append(key)
        node = node[key]
    if not path:
        return data.draw(JSON)
    parent = md
    for k in path[:-1]:
        parent = parent[k]
    if data.draw(st.booleans(), label="remove") and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(JSON)
    return md


def mangle(src: Path, out: Path, data: st.DataObject) -> Path:
    how = data.draw(st.sampled_from(["bytes", "cut", "array", "array", "array", "header", "meta", "meta"]))
    if how == "bytes":
        raw = bytearray(src.read_bytes())
        for _ in range(data.draw(st.integers(1, 4))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        out.write_bytes(bytes(raw))
        return out
    if how == "cut":
        raw = src.read_bytes()
        out.write_bytes(raw[: data.draw(st.integers(0, len(raw) - 1))])
        return out
    names = sorted(M.arrays(src))
    if how == "array":
        name = data.draw(st.sampled_from(names))
        if data.draw(st.integers(0, 9)) == 0:
            return M.rewrite(src, out, arrays={name: None})  # drop the member
        return M.rewrite(src, out, arrays={name: mutate_array(M.arrays(src)[name], data)})
    if how == "header":
        name = data.draw(st.sampled_from(names))
        a = M.arrays(src)[name]
        shape = tuple(data.draw(st.lists(st.sampled_from([0, 1, 2, 3, 10**6, 10**12, 2**62]), max_size=3)))
        body = M.npy(a)[len(M.npy_header(a.shape, a.dtype.str)):]
        return M.rewrite(src, out, raw={f"arrays/{name}.npy": M.npy_header(shape, a.dtype.str) + body})
    return M.rewrite(src, out, meta=mutate_json(M.meta(src), data))


def make_test(zoo_dir: Path, n_examples: int, seed: int):
    files = {p.stem: p for p in sorted(zoo_dir.glob("*.tbm"))}
    datasets = Z.datasets()
    tmp = Path(tempfile.mkdtemp(prefix="tastebud-fuzz-"))

    @hypothesis.seed(seed)
    @settings(max_examples=n_examples, deadline=None, database=None, derandomize=False, print_blob=True,
              suppress_health_check=list(HealthCheck))
    @given(name=st.sampled_from(sorted(files)), data=st.data())
    def mangled_files_fail_cleanly_or_work(name: str, data: st.DataObject) -> None:
        bad = mangle(files[name], tmp / f"{name}.tbm", data)
        try:
            m = tb.load(bad)
        except (FormatError, MissingExtraError):
            return
        Z.exercise(m, datasets)  # a file that loads must give a working model

    return mangled_files_fail_cleanly_or_work


def main(argv: list[str]) -> int:
    zoo_dir, n = Path(argv[1]), int(argv[2])
    seed = int(argv[3]) if len(argv) > 3 else 0
    import random

    random.seed(seed)
    np.random.seed(seed)
    test = make_test(zoo_dir, n, seed)
    try:
        test()
    except Exception:
        traceback.print_exc()
        return 1
    print(f"ok: {n} mangled files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
