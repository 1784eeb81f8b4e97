"""FP-Growth vs Apriori vs brute-force enumeration, supports, edge cases, persistence, real data."""

import itertools
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from tastebud.data.baskets import Baskets
from tastebud.exceptions import DataError, NotFittedError, UnknownIdError
from tastebud.models.rules.apriori import Apriori
from tastebud.models.base import Model
from tastebud.models.rules.fpgrowth import FPGrowth


def brute_force(baskets, min_count, max_len=None):
    items = sorted({x for b in baskets for x in b})
    sets = [set(b) for b in baskets]
    out = {}
    for L in range(1, len(items) + 1):
        if max_len is not None and L > max_len:
            break
        for c in itertools.combinations(items, L):
            n = sum(1 for s in sets if s.issuperset(c))
            if n >= min_count:
                out[frozenset(c)] = n
    return out


def as_dict(df):
    return dict(zip(df["itemsets"], df["count"].tolist()))


databases = st.lists(st.lists(st.integers(0, 7), max_size=7), min_size=1, max_size=30).filter(lambda bs: any(bs))


@settings(max_examples=60, deadline=None)
@given(bs=databases, min_count=st.integers(1, 5), max_len=st.sampled_from([None, 1, 2, 3]))
def test_fpgrowth_equals_apriori_equals_brute_force(bs, min_count, max_len):
    truth = brute_force(bs, min_count, max_len)
    fp = FPGrowth(min_support=min_count, max_len=max_len).fit(bs)
    ap = Apriori(min_support=min_count, max_len=max_len).fit(bs)
    assert as_dict(fp.itemsets()) == truth
    assert as_dict(ap.itemsets()) == truth
    assert fp.n_itemsets_ == len(truth)
    df = fp.itemsets()
    assert np.allclose(df["support"], df["count"] / len(bs))


@settings(max_examples=25, deadline=None)
@given(bs=databases, min_count=st.integers(1, 4))
def test_single_path_and_dense_databases(bs, min_count):
    # nested baskets make the FP-tree a single path (shortcut); duplicated baskets a dense tree
    nested = [list(range(len(b))) for b in bs]
    assert as_dict(FPGrowth(min_count).fit(nested).itemsets()) == brute_force(nested, min_count)
    dense = bs + [sorted(set(b) | {0, 1, 2}) for b in bs]
    assert as_dict(FPGrowth(min_count).fit(dense).itemsets()) == brute_force(dense, min_count)


def test_random_larger_database_against_apriori():
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.6, size=25)
    bs = [np.flatnonzero(rng.random(25) < p).tolist() for _ in range(300)]
    fp = FPGrowth(min_support=0.05).fit(bs)
    ap = Apriori(min_support=0.05).fit(bs)
    assert as_dict(fp.itemsets()) == as_dict(ap.itemsets())
    assert fp.n_itemsets_ > 500


def test_count_and_fraction_support_agree():
    rng = np.random.default_rng(0)
    bs = [rng.choice(30, size=rng.integers(1, 8), replace=False).tolist() for _ in range(997)]
    for frac in (0.01, 0.02, 0.05, 0.1):
        count = int(np.ceil(frac * len(bs)))
        a = FPGrowth(min_support=frac).fit(bs)
        b = FPGrowth(min_support=count).fit(bs)
        assert a.min_count_ == b.min_count_ == count
        assert as_dict(a.itemsets()) == as_dict(b.itemsets())
        # the boundary: nothing below the count, itemsets exactly at it are kept
        assert a.itemsets()["count"].min() >= count


def test_input_forms_agree(tmp_path):
    bs = [["a", "b", "c"], ["a", "b"], ["b", "c"], ["a", "c", "d"], ["a", "b", "c", "d"]]
    want = as_dict(FPGrowth(2).fit(bs).itemsets())
    long = pd.DataFrame([(t, x) for t, b in enumerate(bs) for x in b], columns=["transaction", "item"])
    onehot = pd.DataFrame([[x in b for x in "abcd"] for b in bs], columns=list("abcd"))
    csv = tmp_path / "b.csv"
    csv.write_text("\n".join(",".join(b) for b in bs) + "\n")
    dat = tmp_path / "b.dat"
    dat.write_text("\n".join(" ".join(b) for b in bs) + "\n")
    for data in (Baskets(bs), long, onehot, str(csv), Baskets.from_file(dat)):
        assert as_dict(FPGrowth(2).fit(data).itemsets()) == want


def test_edge_cases():
    # duplicates inside a basket count once; empty baskets count in the denominator
    fp = FPGrowth(min_support=0.5).fit([["a", "a", "b"], [], ["a"], ["b", "b"]])
    d = as_dict(fp.itemsets())
    assert d == {frozenset(["a"]): 2, frozenset(["b"]): 2}
    assert fp.support("a") == 0.5 and fp.support(["a", "b"]) == 0.0
    with pytest.raises(UnknownIdError):
        fp.support("zzz")
    for bad in (0, 0.0, -1, 1.5, float("nan"), True, "0.1"):
        with pytest.raises(ValueError, match="min_support"):
            FPGrowth(min_support=bad).fit([["a"]])
    with pytest.raises(ValueError, match="max_len"):
        FPGrowth(min_support=1, max_len=0).fit([["a"]])
    with pytest.raises(DataError, match="mix"):
        FPGrowth(min_support=1).fit([[1, "a"], ["b"]])
    with pytest.raises(DataError):
        FPGrowth(min_support=1).fit([])
    with pytest.raises(DataError):
        FPGrowth(min_support=1).fit(["abc"])  # a string is not a basket
    with pytest.raises(NotFittedError):
        FPGrowth().itemsets()
    # a count above the number of baskets: no itemsets, not an error
    assert FPGrowth(min_support=10).fit([["a"], ["a"]]).n_itemsets_ == 0
    assert len(FPGrowth(min_support=10).fit([["a"], ["a"]]).rules()) == 0
    # min_support = 1.0: items in every basket
    assert as_dict(FPGrowth(1.0).fit([["a", "b"], ["a"]]).itemsets()) == {frozenset(["a"]): 2}


def test_itemset_arrays_and_persistence(tmp_path):
    rng = np.random.default_rng(1)
    bs = [rng.choice(15, size=rng.integers(1, 9), replace=False).tolist() for _ in range(200)]
    fp = FPGrowth(min_support=0.04).fit(bs)
    arr = fp.itemset_arrays()
    df = fp.itemsets()
    assert len(arr.indptr) == len(df) + 1
    for r in range(len(df)):
        s = frozenset(arr.item_ids[arr.items[arr.indptr[r]:arr.indptr[r + 1]]].tolist())
        assert s == df["itemsets"][r] and arr.counts[r] == df["count"][r]
    path = fp.save(tmp_path / "fp.tb")
    fp2 = Model.load(path)
    assert isinstance(fp2, FPGrowth)
    pd.testing.assert_frame_equal(fp2.itemsets(), df)
    pd.testing.assert_frame_equal(fp2.rules(min_threshold=0.2), fp.rules(min_threshold=0.2))
    assert fp2.get_params() == {"min_support": 0.04, "max_len": None, "max_itemsets": 100_000_000, "max_rules": 10_000_000}


def test_matches_mlxtend():
    mlx = pytest.importorskip("mlxtend.frequent_patterns")
    rng = np.random.default_rng(5)
    p = rng.uniform(0.05, 0.5, size=20)
    onehot = pd.DataFrame(rng.random((500, 20)) < p, columns=[f"i{j}" for j in range(20)])
    ref = mlx.fpgrowth(onehot, min_support=0.03, use_colnames=True)
    fp = FPGrowth(min_support=0.03).fit(onehot)
    mine = fp.itemsets()
    assert dict(zip(ref["itemsets"], ref["support"])) == pytest.approx(dict(zip(mine["itemsets"], mine["support"])))
    ref_r = mlx.association_rules(ref, num_itemsets=len(onehot), metric="confidence", min_threshold=0.3)
    my_r = fp.rules(metric="confidence", min_threshold=0.3)
    assert len(ref_r) == len(my_r)
    a = {(x, y): row for x, y, row in zip(ref_r["antecedents"], ref_r["consequents"], ref_r.itertuples(index=False))}
    b = {(x, y): row for x, y, row in zip(my_r["antecedents"], my_r["consequents"], my_r.itertuples(index=False))}
    assert set(a) == set(b)
    for col in ("antecedent support", "consequent support", "support", "confidence", "lift", "leverage",
                "conviction", "zhangs_metric", "jaccard", "certainty", "kulczynski"):
        i, j = list(ref_r.columns).index(col), list(my_r.columns).index(col)
        got = np.array([b[key][j] for key in a])
        want = np.array([a[key][i] for key in a])
        np.testing.assert_allclose(got, want, rtol=1e-9, err_msg=col)


def _groceries():
    root = os.environ.get("TASTEBUD_DATA")
    f = Path(root or "/nonexistent") / "groceries" / "groceries.csv"
    if not f.exists():
        pytest.skip("TASTEBUD_DATA with groceries/groceries.csv is not available")
    return Baskets.from_file(f, sep=",")


def test_groceries_end_to_end():
    g = _groceries()
    fp = FPGrowth(min_support=0.005).fit(g)
    # published figures for Groceries (9,835 baskets, 169 items): 1001 itemsets at support 0.005,
    # 120 rules at confidence 0.5; whole milk is the most frequent item (2,513 baskets)
    assert len(g) == 9835 and fp.n_itemsets_ == 1001
    top = fp.itemsets(sort=True).iloc[0]
    assert top["itemsets"] == frozenset(["whole milk"]) and top["count"] == 2513
    rules = fp.rules(min_confidence=0.5)
    assert len(rules) == 120
    assert (rules["confidence"] >= 0.5).all()
    assert fp.count_rules(min_threshold=0.5) == 120
    # against Apriori on the same data (count threshold 50)
    ap = Apriori(min_support=0.005).fit(g)
    assert as_dict(ap.itemsets()) == as_dict(fp.itemsets())


def test_many_frozensets_gc_state_and_values():
    """Above 100k itemsets the frozensets are moved to the oldest GC generation: the GC stays as the
    caller left it (enabled or disabled), objects frozen by the caller stay frozen, and every
    frozenset and count is right (closed form: baskets holding all 17 items give all 2^17 - 1
    subsets; one extra basket {0} makes the count of {0} larger)."""
    import gc

    k = 17
    baskets = [list(range(k))] * 3 + [[0]]
    expect_rows = 2**k - 1
    for caller_frozen, caller_disabled in ((False, False), (True, False), (False, True)):
        if caller_frozen:
            gc.freeze()
        if caller_disabled:
            gc.disable()
        frozen_before = gc.get_freeze_count()
        try:
            fp = FPGrowth(min_support=3).fit(baskets)
            df = fp.itemsets()
            assert gc.isenabled() == (not caller_disabled)
            # nothing of ours frozen, nothing of the caller's unfrozen (a few frozen objects may die meanwhile)
            assert gc.get_freeze_count() <= frozen_before
            if caller_frozen:
                assert gc.get_freeze_count() > 0.9 * frozen_before
        finally:
            if caller_frozen:
                gc.unfreeze()
            if caller_disabled:
                gc.enable()
        assert len(df) == expect_rows
        assert all(type(s) is frozenset for s in df["itemsets"].iloc[:50])
        if not caller_frozen and not caller_disabled:  # (once: the three runs mine the same data)
            assert set(df["itemsets"]) == {frozenset(c) for L in range(1, k + 1) for c in itertools.combinations(range(k), L)}
        cnt = dict(zip(df["itemsets"], df["count"]))
        assert cnt[frozenset([0])] == 4 and cnt[frozenset([1])] == 3 and cnt[frozenset(range(k))] == 3
        assert np.allclose(df["support"], df["count"] / 4)
