"""Cold start: how long a fresh process takes to its first result, per model family, with a cold
numba cache (a fresh ``NUMBA_CACHE_DIR``: every kernel compiles) and a warm one (the same folder
again: every kernel loads from the cache), side by side with the reference libraries where they
exist (pyfim and mlxtend for rules, implicit for ALS).

    .venv/bin/python benchmarks/cold_start.py [--quick] [--json PATH] [--families rules,mf,...]
                                              [--repeats N] [--no-cold] [--no-refs]

Every measurement is a new Python process (``--child FAMILY``) that reports, from its first line:
``import tastebud`` alone, the imports of the family (the model module with pandas, scipy and
numba), reading its small real dataset (not counted below), the **first call** (fit and the first
result: rules, predictions or a top-10 list) and the same call again in the same process
(``again``: the steady-state cost, what the first call costs without any start-up). ``first −
again`` is the start-up overhead: numba's one-time set-up, loading (warm) or compiling (cold) each
kernel. Each child also reports how many kernel specialisations it compiled and how many it
loaded from the cache during its first call (numba's per-dispatcher cache statistics).

Warm runs are repeated ``--repeats`` times, alternating with the reference library's run so that
both see the same machine load; medians are printed. Record the load (``uptime``) with any figure.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

DATA = Path(os.environ.get("TASTEBUD_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
ML = DATA / "ml-100k"
GROCERIES = DATA / "groceries" / "groceries.csv"
MIN_SUPPORT, MIN_CONF = 0.001, 0.5

# family -> (what it runs, reference libraries)
FAMILIES: dict[str, tuple[str, list[str]]] = {
    "rules": ("FPGrowth(min_support=0.001) on groceries + rules(confidence >= 0.5)", ["pyfim", "mlxtend"]),
    "mf": ("MatrixFactorization(factors=20, epochs=5) on ML-100K u1 + predict u1.test", []),
    "svdpp": ("SVDpp(factors=20, epochs=2) on ML-100K u1 + predict u1.test", []),
    "als": ("ALS(factors=10, epochs=3) on ML-100K u1 + predict u1.test", []),
    "ials": ("ImplicitALS(factors=32, epochs=3) on ML-100K u1 + recommend 10 users", ["implicit"]),
    "bpr": ("BPR(factors=32, epochs=3) on ML-100K u1 + recommend 10 users", []),
    "ease": ("EASE() on ML-100K u1 + recommend 10 users", []),
    "puresvd": ("PureSVD(factors=32) on ML-100K u1 + recommend 10 users", []),
    "fm": ("FactorizationMachine(factors=8, epochs=10, MCMC) on ML-100K u1 + predict u1.test", []),
    "item2vec": ("Item2Vec(dim=32, epochs=1) on ML-100K u1 sequences + similar_items", []),
    "transitions": ("ItemTransitions() on ML-100K u1 sequences + recommend 10 users", []),
    "evaluate": ("Popularity on ML-100K u1 + evaluate(ndcg@10, recall@10) on u1.test (top-k kernel)", []),
}
QUICK = ["rules", "mf", "ials", "evaluate"]


def _params(cls, **kw):
    """``kw`` in the project's vocabulary, renamed to what ``cls`` accepts (``tastebud.warmup.model_kwargs``;
    a fallback for checkouts without it, so the script also measures older versions)."""
    try:
        from tastebud.warmup import model_kwargs
    except ImportError:
        import inspect

        aliases = {"factors": ("n_factors", "rank"), "epochs": ("n_epochs", "iterations", "n_iter")}
        accepted = inspect.signature(cls.__init__).parameters
        return {(k if k in accepted else next((a for a in aliases.get(k, ()) if a in accepted), k)): v
                for k, v in kw.items()}
    return model_kwargs(cls, **kw)


# ------------------------------------------------------------------ child side
def _numba_stats() -> dict[str, int]:
    """Kernel specialisations compiled / loaded from numba's cache in this process (numba's
    per-dispatcher cache statistics: a miss is a compilation)."""
    from numba.core.registry import CPUDispatcher

    compiled = loaded = 0
    for mod_name, mod in list(sys.modules.items()):
        if mod_name.startswith("tastebud.kernels.") and mod is not None:
            for obj in vars(mod).values():
                if isinstance(obj, CPUDispatcher) and obj.__module__ == mod_name:
                    compiled += sum(obj.stats.cache_misses.values())
                    loaded += sum(obj.stats.cache_hits.values())
    return {"compiled": compiled, "loaded": loaded}


def _ml_frames():
    import numpy as np

    def read(p):
        a = np.loadtxt(p, dtype=np.int64)
        return a[:, 0], a[:, 1], a[:, 2].astype(np.float64), a[:, 3]

    return read(ML / "u1.base"), read(ML / "u1.test")


def child(family: str) -> dict:
    """Runs in the fresh process: returns the timings of one family (or reference library)."""
    res: dict = {"family": family}
    lap = [time.perf_counter(), time.process_time()]

    def mark(key: str) -> None:  # wall and CPU seconds since the previous mark
        now, cpu = time.perf_counter(), time.process_time()
        res[key], res[key + "_cpu"] = now - lap[0], cpu - lap[1]
        lap[:] = [now, cpu]

    if family == "pyfim":
        import fim

        mark("import_lib")
        lists = [ln.rstrip("\n").split(",") for ln in open(GROCERIES) if ln.strip()]
        mark("data")

        def call():
            mc = -int(-(MIN_SUPPORT * len(lists)) // 1)
            return len(fim.fpgrowth(lists, target="r", supp=-mc, conf=MIN_CONF * 100, zmin=2, report="aC", mode="o"))
    elif family == "mlxtend":
        import pandas as pd
        from mlxtend.frequent_patterns import association_rules, fpgrowth
        from mlxtend.preprocessing import TransactionEncoder

        mark("import_lib")
        lists = [ln.rstrip("\n").split(",") for ln in open(GROCERIES) if ln.strip()]
        te = TransactionEncoder()
        df = pd.DataFrame(te.fit(lists).transform(lists), columns=te.columns_)
        mark("data")

        def call():
            fi = fpgrowth(df, min_support=MIN_SUPPORT, use_colnames=True)
            return len(association_rules(fi, metric="confidence", min_threshold=MIN_CONF))
    elif family == "implicit":
        from implicit.cpu.als import AlternatingLeastSquares

        mark("import_lib")
        import numpy as np
        import scipy.sparse as sp

        (u, i, r, _), _test = _ml_frames()
        m = sp.csr_matrix((np.ones(len(u), dtype=np.float32), (u, i))).tocsr()
        rows = np.flatnonzero(np.diff(m.indptr))[:10]
        mark("data")

        def call():
            model = AlternatingLeastSquares(factors=32, iterations=3, random_state=0, num_threads=0)
            model.fit(m, show_progress=False)
            return model.recommend(rows, m[rows], N=10)[0].shape
    else:
        import tastebud as tb

        mark("import_tb")
        call = _tastebud_case(family, tb, mark)
    out = call()
    mark("first")
    call()
    mark("again")
    res["result"] = repr(out)[:60]
    if family not in ("pyfim", "mlxtend", "implicit"):
        res.update(_numba_stats())
    return res


def _tastebud_case(family: str, tb, mark):
    """Import the family, read its data (``mark``ed separately) and return the first call."""
    if family == "rules":
        from tastebud.data.baskets import Baskets
        from tastebud.models.rules.fpgrowth import FPGrowth

        mark("import_family")
        b = Baskets.from_file(GROCERIES, sep=",")
        mark("data")
        return lambda: len(FPGrowth(min_support=MIN_SUPPORT).fit(b).rules(metric="confidence", min_threshold=MIN_CONF))
    if family == "transitions" or family == "item2vec":
        mod = __import__(f"tastebud.models.embeddings.{family}", fromlist=["x"])
        cls = mod.ItemTransitions if family == "transitions" else mod.Item2Vec
        from tastebud.data.sequences import Sequences
    else:
        cls = {
            "mf": lambda: tb.MatrixFactorization, "svdpp": lambda: tb.SVDpp, "als": lambda: tb.ALS,
            "ials": lambda: tb.ImplicitALS, "bpr": lambda: tb.BPR, "ease": lambda: tb.EASE,
            "puresvd": lambda: tb.PureSVD, "fm": lambda: tb.FactorizationMachine, "evaluate": lambda: tb.Popularity,
        }[family]()
    from tastebud.data.interactions import Interactions

    if family == "evaluate":
        evaluate = tb.evaluate
    mark("import_family")
    import numpy as np

    (u, i, r, t), (tu, ti, tr, _tt) = _ml_frames()
    full = Interactions.from_arrays(np.concatenate([u, tu]), np.concatenate([i, ti]))  # id maps of u.data
    train = Interactions.from_arrays(u, i, r, timestamps=t, user_map=full.users, item_map=full.items)
    users10 = train.users.ids[:10]
    mark("data")
    if family in ("mf", "svdpp", "als", "fm"):
        kw = {"mf": dict(factors=20, epochs=5), "svdpp": dict(factors=20, epochs=2), "als": dict(factors=10, epochs=3),
              "fm": dict(factors=8, epochs=10)}[family]
        p = _params(cls, **kw, random_state=0)
        return lambda: float(np.mean(cls(**p).fit(train).predict(tu, ti)))
    if family in ("ials", "bpr", "ease", "puresvd"):
        kw = {"ials": dict(factors=32, epochs=3), "bpr": dict(factors=32, epochs=3), "ease": {},
              "puresvd": dict(factors=32)}[family]
        if family != "ease":
            kw["random_state"] = 0
        p = _params(cls, **kw)
        return lambda: cls(**p).fit(train).recommend(users10, k=10)[0].shape
    if family in ("item2vec", "transitions"):
        seqs = Sequences.from_interactions(train)
        if family == "item2vec":
            p = _params(cls, dim=32, epochs=1, random_state=0)
            return lambda: cls(**p).fit(seqs).similar_items(int(i[0]), k=10)[0].shape
        return lambda: cls().fit(seqs).recommend(users10, k=10)[0].shape
    if family == "evaluate":
        test = Interactions.from_arrays(tu, ti, tr, user_map=full.users, item_map=full.items)
        return lambda: evaluate(cls().fit(train), test, metrics=["ndcg@10", "recall@10"])
    raise SystemExit(f"unknown family {family!r}")


# ------------------------------------------------------------------ parent side
def run_child(family: str, cache_dir: Path | None, timeout: float = 900.0) -> dict:
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, __file__, "--child", family], env=env, capture_output=True, text=True,
                       timeout=timeout)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{family}: child failed\n{p.stderr[-3000:]}")
    res = json.loads(p.stdout.strip().splitlines()[-1])
    res["process"] = wall
    return res


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def measure(family: str, refs: list[str], repeats: int, cold: bool, keep: Path | None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"tb-cold-{family}-")) if keep is None else keep / family
    tmp.mkdir(parents=True, exist_ok=True)
    out: dict = {"family": family, "what": FAMILIES[family][0], "load_before": load()}
    try:
        if cold:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            out["cold"] = run_child(family, tmp)
        else:
            run_child(family, tmp)  # fill the cache
        warm: list[dict] = []
        ref_runs: dict[str, list[dict]] = {r: [] for r in refs}
        for _ in range(repeats):  # alternate: tastebud, ref1, ref2, tastebud, ...
            warm.append(run_child(family, tmp))
            for r in refs:
                ref_runs[r].append(run_child(r, None))
        out["warm"] = _median_run(warm)
        out["refs"] = {r: _median_run(v) for r, v in ref_runs.items()}
    finally:
        if keep is None:
            shutil.rmtree(tmp, ignore_errors=True)
    out["load_after"] = load()
    return out


def _median_run(runs: list[dict]) -> dict:
    med = dict(runs[0])
    for key, v in runs[0].items():
        if isinstance(v, float):
            med[key] = statistics.median(r[key] for r in runs)
    med["n"] = len(runs)
    if "compiled" in runs[0]:
        med["compiled"] = max(r["compiled"] for r in runs)
    return med


def _imports(r: dict, suffix: str = "") -> float:
    return r.get("import_tb" + suffix, 0.0) + r.get("import_family" + suffix, r.get("import_lib" + suffix, 0.0))


def _row(name: str, r: dict) -> str:
    nb = f"{r['compiled']}/{r['loaded']}" if "compiled" in r else "–"
    tb = f"{r['import_tb']:.3f}" if "import_tb" in r else "–"
    imp, first = _imports(r), r["first"]
    return (f"| {name} | {tb} | {imp:.3f} ({_imports(r, '_cpu'):.3f}) | {first:.3f} ({r['first_cpu']:.3f}) "
            f"| {imp + first:.3f} | {r['again']:.3f} | {first - r['again']:.3f} | {nb} |")


def table(results: list[dict]) -> str:
    head = ("| run | import tastebud | all imports (CPU) | first call (CPU) | imports + first call | again | "
            "first − again | kernels compiled/loaded |\n|---|---|---|---|---|---|---|---|")
    lines = []
    for res in results:
        lines.append(f"\n**{res['family']}**: {res['what']} (load {res['load_before']} → {res['load_after']})\n")
        lines.append(head)
        if "cold" in res:
            lines.append(_row("tastebud, cold cache", res["cold"]))
        lines.append(_row(f"tastebud, warm cache (median of {res['warm']['n']})", res["warm"]))
        for name, r in res["refs"].items():
            lines.append(_row(f"{name} (median of {r['n']})", r))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help=f"only {','.join(QUICK)}, 2 warm repeats")
    ap.add_argument("--families", default=None, help="comma-separated subset of " + ",".join(FAMILIES))
    ap.add_argument("--repeats", type=int, default=None, help="warm runs per family (default 5, quick 2)")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold-cache run")
    ap.add_argument("--no-refs", action="store_true", help="skip the reference libraries")
    ap.add_argument("--cache-root", default=None, help="keep the numba caches here (default: temporary folders)")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    fams = args.families.split(",") if args.families else (QUICK if args.quick else list(FAMILIES))
    repeats = args.repeats or (2 if args.quick else 5)
    print(f"# cold start: {platform.node()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, load {load()}", flush=True)
    results = []
    for fam in fams:
        refs = [] if args.no_refs else [r for r in FAMILIES[fam][1] if _importable(r)]
        res = measure(fam, refs, repeats, not args.no_cold, Path(args.cache_root) if args.cache_root else None)
        results.append(res)
        print(table([res]), flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def _importable(lib: str) -> bool:
    mod = {"pyfim": "fim"}.get(lib, lib)
    import importlib.util

    return importlib.util.find_spec(mod) is not None


if __name__ == "__main__":
    sys.exit(main())
