"""Building ``Interactions`` from a large synthetic DataFrame: seconds and peak memory.

    .venv/bin/python benchmarks/interactions.py [--quick] [--json PATH] [--rows N] [--repeats R]

Cases (each on a fresh DataFrame of ``--rows`` rows, default 10,000,000; ``--quick``: 2,000,000):

* ``int ids + rating + timestamp``: int64 user/item ids, float ratings, int timestamps,
  duplicates summed (the default policy);
* ``int ids, implicit``: user/item only;
* ``string ids + rating``: the same with str user/item ids (1/5 of the rows: Python strings are
  heavy, the DataFrame alone is ~100 bytes per row);
* ``duplicates='last'`` on the first case (sorts by timestamp within pairs).

Peak memory is measured two ways: ``tracemalloc`` (peak bytes allocated by Python and NumPy during
the build, above what existed before) and the process RSS high-water mark sampled every 5 ms by a
background thread (psutil if installed, else /proc) minus the RSS before the build. For
reference the script prints the DataFrame's own size. Reference point: pandas ``groupby`` +
``scipy.sparse.coo_matrix`` doing the same job (user/item factorize, sum duplicates, CSR).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from tastebud import Interactions  # noqa: E402


def rss_bytes() -> int:
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class RssPeak:
    def __init__(self, interval: float = 0.005):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()

    def __enter__(self):
        self.base = rss_bytes()
        self.peak = self.base
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss_bytes())


def make_frame(n: int, n_users: int, n_items: int, strings: bool, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # mildly skewed ids, so duplicates exist (as in real logs)
    u = (rng.pareto(1.5, n) * n_users / 10).astype(np.int64) % n_users
    i = (rng.pareto(1.2, n) * n_items / 10).astype(np.int64) % n_items
    df = pd.DataFrame({"user": u, "item": i, "rating": rng.integers(1, 6, n).astype(np.float64),
                       "timestamp": rng.integers(0, 10**9, n)})
    if strings:
        df["user"] = "u" + df["user"].astype(str)
        df["item"] = "i" + df["item"].astype(str)
    return df


def measure(fn: Callable[[], Any], repeats: int) -> dict[str, Any]:
    times = []
    for _ in range(repeats):
        gc.collect()
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
        del out
    gc.collect()
    with RssPeak() as rp:
        out = fn()
    del out
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    out = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    result_mb = None
    if isinstance(out, Interactions):
        m = out.matrix
        result_mb = (m.data.nbytes + m.indices.nbytes + m.indptr.nbytes
                     + (out.timestamps.data.nbytes + out.timestamps.indices.nbytes + out.timestamps.indptr.nbytes
                        if out.timestamps is not None else 0)) / 2**20
    del out
    return {"seconds": float(np.median(times)), "seconds_all": times,
            "peak_tracemalloc_mb": (peak - base) / 2**20, "peak_rss_delta_mb": (rp.peak - rp.base) / 2**20,
            "result_mb": result_mb}


def pandas_scipy_reference(df: pd.DataFrame) -> sp.csr_matrix:
    g = df.groupby(["user", "item"], sort=False)["rating"].sum().reset_index()
    uc, _ = pd.factorize(g["user"])
    ic, _ = pd.factorize(g["item"])
    return sp.coo_matrix((g["rating"].to_numpy(np.float32), (uc, ic))).tocsr()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2M rows, one repeat")
    ap.add_argument("--json", type=str, default=None, help="write machine-readable results here")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--no-reference", action="store_true", help="skip the pandas+scipy reference")
    args = ap.parse_args()
    n = args.rows or (2_000_000 if args.quick else 10_000_000)
    repeats = args.repeats or (1 if args.quick else 2)
    n_users, n_items = max(n // 20, 10), max(n // 100, 10)
    results = []

    df = make_frame(n, n_users, n_items, strings=False)
    df_mb = df.memory_usage(deep=True).sum() / 2**20
    cases: list[tuple[str, pd.DataFrame, Callable[[pd.DataFrame], Any], float]] = [
        ("int ids + rating + timestamp (sum)", df,
         lambda d: Interactions.from_frame(d, rating="rating", timestamp="timestamp"), df_mb),
        ("int ids, implicit (sum)", df[["user", "item"]],
         lambda d: Interactions.from_frame(d), df[["user", "item"]].memory_usage(deep=True).sum() / 2**20),
        ("int ids + rating + timestamp (last)", df,
         lambda d: Interactions.from_frame(d, rating="rating", timestamp="timestamp", duplicates="last"), df_mb),
    ]
    if not args.no_reference:
        cases.append(("reference: pandas groupby + scipy coo→csr (sum, no timestamps)", df, pandas_scipy_reference, df_mb))
    for name, d, fn, mb in cases:
        r = measure(lambda: fn(d), repeats)
        r.update(case=name, rows=len(d), input_mb=mb)
        results.append(r)
        print(f"{name:<62s} {len(d):>11,d} rows  {r['seconds']:7.2f} s  tracemalloc peak {r['peak_tracemalloc_mb']:8.0f} MB"
              f"  RSS +{r['peak_rss_delta_mb']:6.0f} MB  (input {mb:.0f} MB)", flush=True)
    inter = Interactions.from_frame(df, rating="rating", timestamp="timestamp")
    shape, nnz = inter.shape, inter.nnz
    del inter, cases, df
    gc.collect()

    ns = max(n // 5, 10)
    dfs = make_frame(ns, max(ns // 20, 10), max(ns // 100, 10), strings=True, seed=1)
    mb = dfs.memory_usage(deep=True).sum() / 2**20
    r = measure(lambda: Interactions.from_frame(dfs, rating="rating"), repeats)
    r.update(case="string ids + rating (sum)", rows=ns, input_mb=mb)
    results.append(r)
    print(f"{'string ids + rating (sum)':<62s} {ns:>11,d} rows  {r['seconds']:7.2f} s  tracemalloc peak "
          f"{r['peak_tracemalloc_mb']:8.0f} MB  RSS +{r['peak_rss_delta_mb']:6.0f} MB  (input {mb:.0f} MB)", flush=True)
    print(f"\nint-id matrix: {shape[0]:,} users × {shape[1]:,} items, {nnz:,} distinct pairs from {n:,} rows")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"benchmark": "interactions", "rows": n, "repeats": repeats, "python": platform.python_version(),
                       "numpy": np.__version__, "pandas": pd.__version__, "cpus": os.cpu_count(),
                       "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
