"""Cost of reading model files as untrusted input (issue #15), measured side by side in one process.

1. Loading a large model file: ``tastebud.load`` (container checks, .npy headers before data, the
   class's declared shapes/ranges/finiteness) against the unchecked read the loader did before
   (``zipfile`` + ``np.load`` per member, then the same model construction), alternating, median of
   ``--repeat`` runs each.
2. libFM duplicate-index check on one wide line whose repeated index comes last: ``read_libfm`` now
   against the search it used before (``row.count(j)`` per index), run on the same token list.

    python benchmarks/model_files.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np


def _unchecked_load(path: Path):
    """What tastebud.load did before the checks: read every listed member, build the model."""
    from tastebud.models import registry

    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("meta.json"))
        arrays = {n: np.load(io.BytesIO(zf.read(f"arrays/{n}.npy")), allow_pickle=False) for n in meta["arrays"]}
    m = registry.get(meta["class"])(**meta["params"])
    m._set_arrays(arrays, meta["extra"])
    m.fitted_ = True
    return m


def bench_load(n_users: int, n_items: int, factors: int, nnz: int, repeat: int) -> dict:
    import scipy.sparse as sp

    import tastebud as tb
    from tastebud.data.idmap import IdMap

    rng = np.random.default_rng(0)
    m = tb.ImplicitALS(factors=factors)
    rows = rng.integers(0, n_users, nnz)
    cols = rng.integers(0, n_items, nnz)
    seen = sp.csr_matrix((np.ones(nnz, np.float32), (rows, cols)), shape=(n_users, n_items))
    m._set_interactions(IdMap(np.arange(n_users), "user"), IdMap(np.arange(n_items), "item"), seen)
    m.user_factors_ = rng.standard_normal((n_users, factors), dtype=np.float32)
    m.item_factors_ = rng.standard_normal((n_items, factors), dtype=np.float32)
    m._gram = None
    m.fitted_ = True
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "big.tbm"
        m.save(p)
        size = p.stat().st_size
        tb.load(p), _unchecked_load(p)  # warm-up
        checked, unchecked = [], []
        for _ in range(repeat):
            t = time.perf_counter()
            _unchecked_load(p)
            unchecked.append(time.perf_counter() - t)
            t = time.perf_counter()
            tb.load(p)
            checked.append(time.perf_counter() - t)
    ratios = [c / u for c, u in zip(checked, unchecked)]
    return {"file_mb": round(size / 2**20, 1), "checked_s": statistics.median(checked),
            "unchecked_s": statistics.median(unchecked), "ratio_median": statistics.median(ratios),
            "ratio_min": min(ratios), "ratio_max": max(ratios)}


def _old_duplicate_search(row_idx: list[int]) -> int:
    return next(j for j in row_idx if row_idx.count(j) > 1)


def bench_libfm(n_new: list[int], n_old: list[int]) -> list[dict]:
    from tastebud.exceptions import DataError
    from tastebud.data.libfm import read_libfm

    out = []
    with tempfile.TemporaryDirectory() as d:
        for n in sorted(set(n_new) | set(n_old)):
            f = Path(d) / f"w{n}.libfm"
            f.write_text("1 " + " ".join([f"{j}:1" for j in range(n)] + [f"{n - 1}:2"]) + "\n")
            row = {"features": n}
            if n in n_new:
                t = time.perf_counter()
                try:
                    read_libfm(f)
                except DataError:
                    pass
                row["read_libfm_s"] = time.perf_counter() - t
            if n in n_old:
                idx = list(range(n)) + [n - 1]
                t = time.perf_counter()
                _old_duplicate_search(idx)
                row["old_search_only_s"] = time.perf_counter() - t
            out.append(row)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    if a.quick:
        load = bench_load(20_000, 2_000, 32, 200_000, repeat=3)
        lib = bench_libfm([10_000, 30_000], [10_000])
    else:
        load = bench_load(200_000, 20_000, 64, 4_000_000, repeat=7)
        lib = bench_libfm([10_000, 30_000, 100_000, 300_000], [10_000, 30_000])
    print(f"load a {load['file_mb']} MB ImplicitALS file: checked {load['checked_s']:.3f} s, unchecked "
          f"{load['unchecked_s']:.3f} s, ratio checked/unchecked median {load['ratio_median']:.2f} "
          f"(min {load['ratio_min']:.2f}, max {load['ratio_max']:.2f})")
    for r in lib:
        print("libFM one line, repeat last:", ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                                      for k, v in r.items()))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps({"load": load, "libfm": lib}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
