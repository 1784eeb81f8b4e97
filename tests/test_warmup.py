"""`python -m tastebud.warmup` compiles each kernel once into numba's cache; afterwards a fresh
process running the models' first calls compiles nothing (numba's per-dispatcher cache statistics:
a cache miss is a compilation). Checked on behaviour, not on time.

Both subprocesses use the same numba cache as this test process (the kernels' ``__pycache__`` or
``$NUMBA_CACHE_DIR``): with a warm cache the warm-up only loads (a few seconds); with a cold one it
compiles what the rest of the suite would otherwise compile."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tastebud import warmup

FIRST_CALLS = textwrap.dedent("""
    import json, sys
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp
    import tastebud as tb
    from tastebud.warmup import kernel_stats, model_kwargs

    rng = np.random.default_rng(42)  # other data than the warm-up's: other sizes, string ids, a DataFrame
    n = 3000
    df = pd.DataFrame({"user": [f"u{x}" for x in rng.integers(0, 150, n)],
                       "item": [f"i{x}" for x in rng.integers(0, 90, n)],
                       "rating": rng.integers(1, 6, n).astype(float), "timestamp": np.arange(n)})
    data = tb.Interactions.from_frame(df.drop_duplicates(["user", "item"]), rating="rating", timestamp="timestamp")
    users, items = data.users.ids[:4], data.items.ids
    for cls in (tb.MatrixFactorization, tb.SVDpp, tb.ALS, tb.FactorizationMachine):
        m = cls(**model_kwargs(cls, epochs=2, random_state=1)).fit(data)
        m.predict(users, items[:4]); m.recommend(users, k=5)
    for cls in (tb.ImplicitALS, tb.BPR, tb.EASE, tb.PureSVD):
        kw = {} if cls is tb.EASE else model_kwargs(cls, factors=8, random_state=1)
        m = cls(**kw).fit(data)
        m.recommend(users, k=5); m.similar_items(items[0], k=3)
        if hasattr(m, "recommend_for_history"):
            m.recommend_for_history(items[:4].tolist(), k=3)
    seqs = tb.Sequences.from_interactions(data)
    tb.Item2Vec(**model_kwargs(tb.Item2Vec, dim=8, epochs=1)).fit(seqs).recommend(seqs.users.ids[:3], k=5)
    tb.ItemTransitions().fit(seqs).recommend(seqs.users.ids[:3], k=5)
    baskets = [[f"p{x}" for x in set(rng.integers(0, 40, rng.integers(1, 9)))] for _ in range(500)]
    fp = tb.FPGrowth(min_support=0.02).fit(baskets)
    fp.itemsets(); fp.rules(metric="confidence", min_threshold=0.3)
    tb.RuleRecommender(min_support=0.02).fit(baskets).recommend(baskets[:5], k=3)
    tb.evaluate(tb.Popularity().fit(data), data, metrics=["ndcg@10", "recall@10"])
    X = sp.random(200, 30, density=0.2, format="csr", random_state=3)
    tb.FactorizationMachine(**model_kwargs(tb.FactorizationMachine, epochs=2)).fit(X, rng.normal(size=200)).predict(X)
    print(json.dumps(kernel_stats()))
""")


def _run(args, timeout=900):
    p = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=os.environ.copy())
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def warm_report():
    """The warm-up as ``make test`` runs it (two processes): per family what it compiled or loaded,
    and every kernel's signatures."""
    return _run(["-m", "tastebud.warmup", "--jobs", "2", "--json"])


def test_after_warmup_a_fresh_process_compiles_nothing(warm_report):
    assert set(warm_report["families"]) == set(warmup.FAMILIES)
    stats = _run(["-c", FIRST_CALLS])
    compiled = {k: v["signatures"] for k, v in stats.items() if v["compiled"]}
    assert not compiled, f"compiled after the warm-up (add the case to tastebud.warmup): {compiled}"
    # and the calls did run kernels, each loaded from the cache
    assert sum(v["loaded"] for v in stats.values()) >= 20
    assert {"fpgrowth.fpgrowth_mine", "sgd.mf_sgd_epoch", "als_implicit.solve_cg", "fm.cd_sweep", "sgns.sgns_epoch",
            "topk.topk_rows_kernel"} <= {k for k, v in stats.items() if v["loaded"]}


def test_a_second_warmup_only_loads(warm_report):
    """The warm-up is idempotent: run again (the cache is now warm), it compiles nothing."""
    again = _run(["-m", "tastebud.warmup", "--jobs", "1", "--json", "--families", "topk,rules"])
    assert {f: r["compiled"] for f, r in again["families"].items()} == {"topk": 0, "rules": 0}
    assert again["families"]["rules"]["loaded"] > 0


def test_each_kernel_has_one_specialisation_per_float_dtype(warm_report):
    """Models pass kernels normalised arrays (C-contiguous, writable, one integer index type), so two
    specialisations of a kernel differ only in the float dtype a model offers (``dtype="float64"``,
    MCMC's float32 samples): anything else would be compiled again for nothing."""
    kernels = warm_report["kernels"]
    assert len(kernels) >= 30
    for name, k in kernels.items():
        sigs = k["signatures"]
        assert all("'A'" not in s and "'F'" not in s and "readonly" not in s for s in sigs), (name, sigs)
        assert len({s.replace("float32", "float64") for s in sigs}) == 1, (name, sigs)
        assert len(sigs) <= 2, (name, sigs)


def test_parallel_warmup_groups_share_no_kernel(warm_report):
    """``--jobs 2`` runs GROUPS concurrently after SHARED: no kernel may be compiled by two processes
    (it would be compiled twice, and both would write its cache index). Each group ran in a process
    of its own, after SHARED at most, so its families' kernel lists are complete."""
    fams = warm_report["families"]
    touched = {f: set(r["kernels"]) for f, r in fams.items()}
    shared = set().union(*(touched[f] for f in warmup.SHARED))
    owners = [set().union(*(touched[f] for f in g)) - shared for g in warmup.GROUPS]
    for a in range(len(owners)):
        for b in range(a + 1, len(owners)):
            assert not owners[a] & owners[b], owners[a] & owners[b]
    assert set().union(*warmup.GROUPS) | set(warmup.SHARED) == set(warmup.FAMILIES)
