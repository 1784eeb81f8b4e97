"""Compile every numba kernel once, ahead of the first fit: ``python -m tastebud.warmup``.

tastebud's kernels are ``@njit(cache=True)``: the first call of a kernel with a new type signature
compiles it (seconds; tens of seconds for the FP-Growth and FM kernels) and writes the machine code
to numba's cache (``__pycache__`` beside the kernel's source, or ``$NUMBA_CACHE_DIR``); every later
process loads it from there in milliseconds. This module runs each model family on tiny synthetic
data through the same code paths as real use — each model's defaults and its documented options
that change a kernel's types (``dtype``, ``solver``, ``parallel``, ``task``, ``mode``) — so that
after it a user's first fit only loads. ``make test`` and ``make demo`` run it first; it costs a few
seconds when the cache is already warm.

Kernels see normalised arrays (contiguous; int64 or int32 indices and float32/float64 values as
each model documents), so each kernel has one specialisation per documented dtype option: the
warm-up reports each kernel's signatures, and ``tests/test_warmup.py`` checks that a fresh process
running the families after the warm-up compiles nothing.

With ``--jobs 2`` the families run in two processes after the shared kernels (the top-k selection)
are compiled: the groups share no kernel function, so no kernel is compiled twice and no two
processes write the same cache index.

    python -m tastebud.warmup [--jobs N] [--families rules,fm,...] [--json] [--quiet]
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import subprocess
import sys
import time
import warnings
from typing import Any, Callable, Iterable

import numpy as np

logger = logging.getLogger("tastebud")

# the project's hyperparameter vocabulary and older names that some models may still take
_ALIASES = {"factors": ("n_factors", "rank"), "epochs": ("n_epochs", "iterations", "n_iter"),
            "lr": ("learning_rate",), "reg": ("regularization",)}


def model_kwargs(cls: type, **kw: Any) -> dict[str, Any]:
    """``kw`` in the project's vocabulary (``factors``, ``epochs``, ``lr``, ``reg``), each renamed to
    the name ``cls`` accepts if it only knows an older one."""
    accepted = inspect.signature(cls.__init__).parameters
    out = {}
    for name, value in kw.items():
        if name not in accepted:
            name = next((a for a in _ALIASES.get(name, ()) if a in accepted), name)
        out[name] = value
    return out


# ------------------------------------------------------------------ tiny data
def _ratings(seed: int = 0):
    from .data.interactions import Interactions

    rng = np.random.default_rng(seed)
    n_users, n_items = 40, 30
    u = np.repeat(np.arange(n_users), 8)
    i = np.concatenate([rng.choice(n_items, 8, replace=False) for _ in range(n_users)])
    r = rng.integers(1, 6, len(u)).astype(np.float64)
    t = np.arange(len(u), dtype=np.int64)
    return Interactions.from_arrays(u, i, r, timestamps=t)


def _baskets():
    rng = np.random.default_rng(0)
    return [sorted({int(x) for x in rng.choice(12, rng.integers(1, 6), replace=False)}) for _ in range(60)]


def _exercise(model: Any, users: np.ndarray, items: np.ndarray) -> None:
    """The calls a user makes first: recommend, and where the model offers them, similar items and a
    new user's history."""
    model.recommend(users[:3], k=3)
    for name, arg in (("similar_items", items[0]), ("recommend_for_history", items[:3].tolist())):
        fn = getattr(model, name, None)
        if fn is not None:
            try:
                fn(arg, k=3)
            except NotImplementedError:
                pass


def _rating_family(cls_path: str, variants: Iterable[dict[str, Any]]) -> Callable[[], None]:
    def run() -> None:
        import importlib

        mod, name = cls_path.rsplit(".", 1)
        cls = getattr(importlib.import_module(f"tastebud.models.{mod}"), name)
        data = _ratings()
        users, items = data.users.ids, data.items.ids
        for kw in variants:
            m = cls(**model_kwargs(cls, **kw)).fit(data)
            if hasattr(m, "predict"):
                m.predict(users[:5], items[:5])
            if hasattr(m, "loss"):
                m.loss(data)  # ImplicitALS's training objective
            _exercise(m, users, items)

    return run


def _rules() -> None:
    from .models.rules.apriori import Apriori
    from .models.rules.fpgrowth import FPGrowth
    from .models.rules.recommender import RuleRecommender

    b = _baskets()
    fp = FPGrowth(min_support=2).fit(b)
    fp.itemsets()
    fp.itemset_arrays()
    fp.support([b[0][0]])
    fp.rules(metric="confidence", min_threshold=0.1)
    fp.rules(metric="lift", min_threshold=0.5)
    for _ in fp.iter_rules(metric="confidence", min_threshold=0.1):
        pass
    Apriori(min_support=2).fit(b).rules(metric="confidence", min_threshold=0.1)
    rec = RuleRecommender(min_support=2, min_confidence=0.1).fit(b)
    rec.recommend(b[:3], k=3)
    rec.recommend_for_history(b[0], k=3)


def _fm() -> None:
    from .models.fm.factorization_machine import FactorizationMachine as FM

    data = _ratings()
    users, items = data.users.ids, data.items.ids
    for solver in ("mcmc", "als", "sgd"):
        m = FM(**model_kwargs(FM, solver=solver, factors=2, epochs=2, random_state=0)).fit(data)
        m.predict(users[:5], items[:5])
        _exercise(m, users, items)
    # a design matrix, both tasks
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    X = sp.random(40, 10, density=0.3, format="csr", random_state=0)
    y = rng.normal(size=40)
    for solver in ("mcmc", "als", "sgd"):
        FM(**model_kwargs(FM, solver=solver, factors=2, epochs=2, random_state=0)).fit(X, y).predict(X)
        FM(**model_kwargs(FM, task="classification", solver=solver, factors=2, epochs=2, random_state=0)) \
            .fit(X, np.sign(y)).predict(X)
    # ordinal task (cutpoint kernels); relational designs (block kernels), in recommender mode too
    from .models.fm.relational import RelationBlock

    ordinal = np.digitize(y, [-0.5, 0.5])
    FM(**model_kwargs(FM, task="ordinal", factors=2, epochs=2, random_state=0)).fit(X, ordinal).predict_proba(X)
    rels = [RelationBlock(rng.integers(0, 5, 40), sp.random(5, 4, density=0.5, format="csr", random_state=1))]
    for task, yy in (("regression", y), ("ordinal", ordinal)):
        for block in (True, False):
            m = FM(**model_kwargs(FM, task=task, factors=2, epochs=2, block=block, random_state=0))
            m.fit(X, yy, relations=rels).predict(X, relations=rels)
    m = FM(**model_kwargs(FM, factors=2, epochs=2, implicit="both", random_state=0)).fit(data)
    m.predict(users[:5], items[:5])


def _ffm() -> None:
    import scipy.sparse as sp

    from .models.fm.ffm import FieldAwareFM

    data = _ratings()
    users, items = data.users.ids, data.items.ids
    m = FieldAwareFM(factors=2, epochs=1, random_state=0).fit(data)
    m.predict(users[:5], items[:5])
    _exercise(m, users, items)
    X = sp.random(40, 10, density=0.3, format="csr", random_state=0)
    y = np.random.default_rng(0).normal(size=40)
    fields = np.arange(10) % 3
    FieldAwareFM(factors=2, epochs=1, random_state=0).fit(X, y, fields).predict(X)
    FieldAwareFM(task="classification", factors=2, epochs=1, adaptive="none", random_state=0) \
        .fit(X, np.sign(y), fields).predict_proba(X)


def _bpr_fm() -> None:
    import pandas as pd

    from .models.fm.bpr_fm import BPRFactorizationMachine
    from .models.fm.templates import pitf

    data = _ratings()
    m = BPRFactorizationMachine(factors=4, epochs=1, random_state=0).fit(data)
    _exercise(m, data.users.ids, data.items.ids)
    df = pd.DataFrame({"user": [0, 0, 1, 2], "item": [0, 1, 1, 0], "tag": [0, 1, 2, 1]})
    t = pitf()
    m = BPRFactorizationMachine(factors=4, epochs=1, random_state=0).fit(t.fit_design(df))
    m.rank(t.context_rows(df), k=2)


def _item2vec() -> None:
    from .data.sequences import Sequences
    from .models.embeddings.item2vec import Item2Vec

    data = _ratings()
    seqs = Sequences.from_interactions(data)
    m = Item2Vec(**model_kwargs(Item2Vec, factors=4, epochs=1, random_state=0)).fit(seqs)
    _exercise(m, seqs.users.ids, seqs.items.ids)
    Item2Vec(**model_kwargs(Item2Vec, factors=4, epochs=1, mode="basket", random_state=0)).fit(_baskets())


def _transitions() -> None:
    from .data.sequences import Sequences
    from .models.embeddings.transitions import ItemTransitions

    seqs = Sequences.from_interactions(_ratings())
    _exercise(ItemTransitions().fit(seqs), seqs.users.ids, seqs.items.ids)


def _neighbours() -> None:
    """Every neighbourhood model once (the kernels take one index and one float type whatever the
    similarity, so one fit per model reaches each kernel), with the options that take other kernel
    paths: the fold-in of UserKNN, SAR's time decay, both k-NN rating orientations; and one fit
    with the symbolic sizing pass (``cooccurrence_counts``) that only catalogues above
    ``DENSE_BOUND_PAIRS`` pairs take."""
    from .models.neighbours import _similarity
    from .models.neighbours.knn import ItemKNN, UserKNN
    from .models.neighbours.knn_rating import KNNBaseline, KNNBasic, KNNWithMeans, KNNWithZScore
    from .models.neighbours.sar import SAR
    from .models.neighbours.slope_one import SlopeOne

    data = _ratings()
    users, items = data.users.ids, data.items.ids
    models = [ItemKNN(), ItemKNN(similarity="bm25", binarize=True), UserKNN(), UserKNN(similarity="tfidf"),
              SAR(), SAR(time_decay=True), KNNBasic(), KNNWithMeans(user_based=False), KNNWithZScore(),
              KNNBaseline(), KNNBaseline(bsl_method="sgd", similarity="msd"), SlopeOne()]
    for m in models:
        m.fit(data)
        if hasattr(m, "predict"):
            m.predict(users[:5], items[:5])
        _exercise(m, users, items)
        m.recommend(users[:3], k=3, filter_seen=False)
    bound = _similarity.DENSE_BOUND_PAIRS
    _similarity.DENSE_BOUND_PAIRS = 0
    try:
        SAR().fit(data)
        KNNBasic().fit(data)
    finally:
        _similarity.DENSE_BOUND_PAIRS = bound


def _evaluate() -> None:
    from .evaluation.evaluate import evaluate
    from .models.baselines.baseline import BaselinePredictor, Popularity

    train, test = _ratings(0), _ratings(1)
    evaluate(Popularity().fit(train), test, metrics=["ndcg@10", "recall@10", "map@10"])
    evaluate(BaselinePredictor().fit(train), test, metrics=["rmse"])


def _topk() -> None:
    """The shared top-k kernel, in the two dtypes ``topk_rows`` passes it (float32, float64)."""
    from .models.base import topk_rows

    for dt in (np.float32, np.float64):
        topk_rows(np.zeros((2, 5), dtype=dt), 3)


_FAST = {"epochs": 1, "random_state": 0}
FAMILIES: dict[str, Callable[[], None]] = {
    "topk": _topk,
    "mf": _rating_family("mf.matrix_factorization.MatrixFactorization", [
        dict(factors=4, **_FAST), dict(factors=4, dtype="float64", **_FAST),
        dict(factors=4, parallel="dsgd", shuffle=True, **_FAST), dict(factors=4, parallel="hogwild", **_FAST),
        dict(factors=4, shuffle=True, **_FAST)]),
    "svdpp": _rating_family("mf.svdpp.SVDpp", [
        dict(factors=4, **_FAST), dict(factors=4, dtype="float64", **_FAST), dict(factors=4, parallel=True, **_FAST)]),
    "als": _rating_family("mf.als.ALS", [dict(factors=4, **_FAST), dict(factors=4, biased=True, **_FAST)]),
    "ials": _rating_family("mf.implicit_als.ImplicitALS", [
        dict(factors=4, **_FAST), dict(factors=4, dtype="float64", **_FAST),
        dict(factors=4, solver="cholesky", **_FAST), dict(factors=4, solver="cholesky", dtype="float64", **_FAST)]),
    "bpr": _rating_family("mf.bpr.BPR", [dict(factors=4, **_FAST)]),
    "ease": _rating_family("neighbours.ease.EASE", [{}]),
    "puresvd": _rating_family("mf.puresvd.PureSVD", [dict(factors=4, random_state=0)]),
    "neighbours": _neighbours,
    "transitions": _transitions,
    "evaluate": _evaluate,
    "item2vec": _item2vec,
    "rules": _rules,
    "fm": _fm,
    "ffm": _ffm,
    "bpr-fm": _bpr_fm,
}
# run first, alone: kernels that several families call (bpr-fm calls the fm and bpr families' helpers)
SHARED = ["topk", "bpr-fm"]
# then these groups, in parallel with --jobs 2: no kernel function is used by two groups
# (neighbours: KNNBaseline's SGD baselines run the MF kernel)
GROUPS = [["rules", "fm", "ffm"],
          ["mf", "svdpp", "als", "ials", "bpr", "ease", "puresvd", "neighbours", "transitions", "evaluate", "item2vec"]]


# ------------------------------------------------------------------ numba statistics
def kernel_stats() -> dict[str, dict[str, Any]]:
    """Per kernel of ``tastebud.kernels`` loaded in this process: its compiled signatures and how
    many specialisations were compiled here (cache misses) or loaded from numba's cache (hits)."""
    from numba.core.registry import CPUDispatcher

    out: dict[str, dict[str, Any]] = {}
    for mod_name, mod in list(sys.modules.items()):
        if not mod_name.startswith("tastebud.kernels.") or mod is None:
            continue
        for name, obj in vars(mod).items():
            if isinstance(obj, CPUDispatcher) and obj.__module__ == mod_name:
                st = obj.stats
                out[f"{mod_name.rsplit('.', 1)[1]}.{name}"] = {
                    "signatures": [str(s) for s in obj.signatures],
                    "compiled": int(sum(st.cache_misses.values())),
                    "loaded": int(sum(st.cache_hits.values())),
                }
    return out


def _delta(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
    d = {}
    for k, v in after.items():
        b = before.get(k, {"compiled": 0, "loaded": 0})
        c, ld = v["compiled"] - b["compiled"], v["loaded"] - b["loaded"]
        if c or ld:
            d[k] = {"compiled": c, "loaded": ld}
    return d


Progress = Callable[[str, dict[str, Any]], None]


def warm(families: Iterable[str], progress: Progress | None = None) -> dict[str, Any]:
    """Run ``families`` in this process; per family: wall and CPU seconds and the kernels it
    compiled or loaded (``{"mf": {"seconds":…, "cpu_seconds":…, "compiled": n, "loaded": n,
    "kernels": {"sgd.mf_sgd_epoch": {"compiled": 1, "loaded": 0}, …}}, …}``)."""
    report: dict[str, Any] = {}
    for fam in families:
        if fam not in FAMILIES:
            raise ValueError(f"unknown family {fam!r}; choose from {', '.join(FAMILIES)}")
        before = kernel_stats()
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings(), _quiet_logs():
            warnings.simplefilter("ignore")  # tiny data: convergence and similar warnings are expected
            FAMILIES[fam]()
        kernels = _delta(before, kernel_stats())
        report[fam] = {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
                       "compiled": sum(v["compiled"] for v in kernels.values()),
                       "loaded": sum(v["loaded"] for v in kernels.values()), "kernels": kernels}
        logger.debug("warm-up %s: %d compiled, %d loaded from cache, %.1fs", fam, report[fam]["compiled"],
                     report[fam]["loaded"], report[fam]["seconds"])
        if progress is not None:
            progress(fam, report[fam])
    return report


class _quiet_logs:
    """The models' own INFO lines (fit summaries) are noise here."""

    def __enter__(self) -> None:
        self._level = logger.level
        logger.setLevel(max(self._level, logging.WARNING))

    def __exit__(self, *exc: Any) -> None:
        logger.setLevel(self._level)


def warm_all(families: Iterable[str] | None = None, jobs: int = 1, progress: Progress | None = None,
             signatures: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The shared kernels first, then the other families, in ``jobs`` processes (at most one per
    group of :data:`GROUPS`); returns :func:`warm`'s report for every family. ``signatures``, if
    given, receives every kernel's compiled signatures, from all the processes."""
    fams = list(FAMILIES) if families is None else list(families)
    unknown = [f for f in fams if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown famil{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; "
                         f"choose from {', '.join(FAMILIES)}")
    first = [f for f in SHARED if f in fams]
    rest = [f for f in fams if f not in first]
    groups = [[f for f in g if f in rest] for g in GROUPS]
    groups = [g for g in groups if g] + [[f for f in rest if not any(f in g for g in GROUPS)]]
    groups = [g for g in groups if g]
    report = warm(first, progress)

    def collect(kernels: dict[str, dict[str, Any]]) -> None:
        if signatures is not None:
            for name, k in kernels.items():
                if not k["signatures"]:
                    continue  # never compiled on its own (inlined into its callers)
                have = signatures.setdefault(name, [])
                have.extend(x for x in k["signatures"] if x not in have)

    if jobs <= 1 or len(groups) <= 1:
        report.update(warm([f for g in groups for f in g], progress))
        collect(kernel_stats())
        return report
    # the other groups in child processes, the first in this one, all at once
    procs = [subprocess.Popen([sys.executable, "-m", "tastebud.warmup", "--json", "--jobs", "1", "--families", ",".join(g)],
                              stdout=subprocess.PIPE, text=True, env=os.environ.copy())
             for g in groups[1:jobs]]
    mine = [f for g in [groups[0], *groups[jobs:]] for f in g]
    report.update(warm(mine, progress))
    collect(kernel_stats())
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"warm-up child process failed with exit code {p.returncode}")
        child = json.loads(out.strip().splitlines()[-1])
        for fam, r in child["families"].items():
            if progress is not None:
                progress(fam, r)
        report.update(child["families"])
        collect(child["kernels"])
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tastebud.warmup", description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", default=None, help="comma-separated subset of: " + ", ".join(FAMILIES))
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="processes (default: 2 when there are 2 cores or more)")
    ap.add_argument("--json", action="store_true", help="print one JSON object (families, kernels) instead")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    fams = args.families.split(",") if args.families else None

    def show(fam: str, r: dict[str, Any]) -> None:
        print(f"  {fam:12s} {r['compiled']:3d} compiled, {r['loaded']:3d} loaded from cache, {r['seconds']:6.1f}s",
              file=sys.stderr, flush=True)

    sigs: dict[str, list[str]] = {}
    report = warm_all(fams, jobs=args.jobs, progress=None if (args.quiet or args.json) else show, signatures=sigs)
    if args.json:
        print(json.dumps({"families": report, "kernels": {k: {"signatures": v} for k, v in sorted(sigs.items())}}))
    elif not args.quiet:
        n_c = sum(r["compiled"] for r in report.values())
        n_l = sum(r["loaded"] for r in report.values())
        print(f"tastebud warm-up: {n_c} kernel specialisations compiled, {n_l} loaded from cache, "
              f"{time.perf_counter() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
