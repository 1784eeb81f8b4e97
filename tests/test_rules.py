"""Association rules: metrics by hand, planted rules recovered, streaming/top-k/counting, the CLI."""

import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings, strategies as st

from tastebud.data.synthetic import planted_baskets
from tastebud.models.rules.apriori import Apriori
from tastebud.models.rules.fpgrowth import FPGrowth
from tastebud.models.rules.association import association_rules

BASKETS = [["bread", "milk"], ["bread", "diapers", "beer", "eggs"], ["milk", "diapers", "beer", "cola"],
           ["bread", "milk", "diapers", "beer"], ["bread", "milk", "diapers", "cola"]]


def rule_row(df, a, c):
    m = (df["antecedents"] == frozenset(a)) & (df["consequents"] == frozenset(c))
    assert m.sum() == 1, (a, c)
    return df[m].iloc[0]


def test_metrics_by_hand():
    fp = FPGrowth(min_support=2).fit(BASKETS)
    df = fp.rules(metric="confidence", min_threshold=0.0)
    # {diapers, milk} -> {beer}: s(A∪C)=2/5, s(A)=3/5, s(C)=3/5
    r = rule_row(df, ["diapers", "milk"], ["beer"])
    sAC, sA, sC = 0.4, 0.6, 0.6
    conf = sAC / sA
    assert r["support"] == pytest.approx(sAC)
    assert r["antecedent support"] == pytest.approx(sA) and r["consequent support"] == pytest.approx(sC)
    assert r["confidence"] == pytest.approx(2 / 3)
    assert r["lift"] == pytest.approx(conf / sC)
    assert r["leverage"] == pytest.approx(sAC - sA * sC)
    assert r["conviction"] == pytest.approx((1 - sC) / (1 - conf))
    assert r["zhangs_metric"] == pytest.approx((sAC - sA * sC) / max(sAC * (1 - sA), sA * (sC - sAC)))
    assert r["jaccard"] == pytest.approx(sAC / (sA + sC - sAC))
    assert r["certainty"] == pytest.approx((conf - sC) / (1 - sC))
    assert r["kulczynski"] == pytest.approx((conf + sAC / sC) / 2)
    # {beer} -> {diapers}: confidence 1, conviction inf
    r = rule_row(df, ["beer"], ["diapers"])
    assert r["confidence"] == 1.0 and math.isinf(r["conviction"])
    # every split of every itemset of size >= 2 is a rule at threshold 0
    its = fp.itemsets()
    assert len(df) == sum(2 ** len(s) - 2 for s in its["itemsets"])
    assert len(fp.rules(min_threshold=0.0, single_consequent=True)) == sum(len(s) for s in its["itemsets"] if len(s) > 1)


@settings(max_examples=40, deadline=None)
@given(bs=st.lists(st.lists(st.integers(0, 6), max_size=6), min_size=2, max_size=25).filter(lambda b: any(b)),
       thr=st.sampled_from([0.0, 0.3, 0.5, 0.8, 1.0]), metric=st.sampled_from(["confidence", "lift", "leverage", "zhangs_metric"]),
       single=st.booleans())
def test_kernel_rules_equal_dataframe_rules(bs, thr, metric, single):
    fp = FPGrowth(min_support=2).fit(bs)
    if fp.n_itemsets_ == 0:
        return
    fast = fp.rules(metric=metric, min_threshold=thr, single_consequent=single)
    slow = association_rules(Apriori(min_support=2).fit(bs).itemsets(), metric=metric, min_threshold=thr,
                             single_consequent=single)
    key = lambda df: sorted(zip(map(sorted, df["antecedents"]), map(sorted, df["consequents"]), np.round(df[metric], 9)))  # noqa: E731
    assert key(fast) == key(slow)
    assert fp.count_rules(metric=metric, min_threshold=thr, single_consequent=single) == len(fast)


def test_planted_rules_found_with_true_confidence():
    rules = [([0, 1], [2], 0.8, 0.10), ([3], [4], 0.6, 0.05), ([5, 6, 7], [8], 0.9, 0.04)]
    b, truth = planted_baskets(n_baskets=20000, n_items=60, rules=rules, random_state=7, mean_noise_items=3.0)
    fp = FPGrowth(min_support=0.01).fit(b)
    df = fp.rules(min_confidence=0.5, single_consequent=True)
    for (A, C, conf, supp), emp in zip(rules, truth.rules["empirical_confidence"]):
        r = rule_row(df, A, C)
        assert r["confidence"] == pytest.approx(emp, abs=1e-12)  # exactly the measured confidence
        assert r["confidence"] == pytest.approx(conf, abs=0.03)  # and close to the planted one
        assert r["support"] == pytest.approx(supp * conf, abs=0.01)
    # the rules with the highest lift all tie items of one planted group (noise items are independent)
    top = fp.rules(metric="lift", min_threshold=1.0, single_consequent=True, top_k=30)
    groups = [set(A) | set(C) for A, C, _, _ in rules]
    assert len(top) == 30 and (top["lift"] > 5).all()
    for a, c in zip(top["antecedents"], top["consequents"]):
        assert any(c <= g and a & g for g in groups), (a, c)


def test_top_k_stream_and_count_agree():
    rng = np.random.default_rng(2)
    p = rng.uniform(0.1, 0.7, 14)
    bs = [np.flatnonzero(rng.random(14) < p).tolist() for _ in range(400)]
    fp = FPGrowth(min_support=0.05).fit(bs)
    full = fp.rules(metric="lift", min_threshold=1.0)
    n = fp.count_rules(metric="lift", min_threshold=1.0)
    assert n == len(full) > 1000
    chunks = list(fp.iter_rules(metric="lift", min_threshold=1.0, chunk_size=50))
    assert len(chunks) > 1 and sum(len(c) for c in chunks) == n
    top = fp.rules(metric="lift", min_threshold=1.0, top_k=25)
    assert len(top) == 25
    np.testing.assert_allclose(top["lift"].to_numpy(), np.sort(full["lift"].to_numpy())[::-1][:25])
    with pytest.raises(ValueError, match="metric"):
        fp.rules(metric="bogus")


def test_association_rules_function_accepts_model_and_frame():
    fp = FPGrowth(min_support=2).fit(BASKETS)
    a = association_rules(fp, metric="confidence", min_threshold=0.6)
    b = association_rules(fp.itemsets(), metric="confidence", min_threshold=0.6)
    assert {(x, y) for x, y in zip(a.antecedents, a.consequents)} == {(x, y) for x, y in zip(b.antecedents, b.consequents)}
    with pytest.raises(ValueError, match="downward closed"):
        association_rules(pd.DataFrame({"support": [0.5], "itemsets": [frozenset(["a", "b"])]}))


def test_cli_rules(tmp_path):
    from tastebud.cli_commands.rules import command

    f = tmp_path / "b.csv"
    f.write_text("\n".join(",".join(b) for b in BASKETS) + "\n")
    out = tmp_path / "r.csv"
    res = CliRunner().invoke(command, [str(f), "--min-support", "2", "--min-confidence", "0.6", "--out", str(out)])
    assert res.exit_code == 0, res.output
    got = pd.read_csv(out)
    want = FPGrowth(min_support=2).fit(BASKETS).rules(min_confidence=0.6)
    assert len(got) == len(want) > 0
    assert set(got["antecedents"]) == {",".join(sorted(s)) for s in want["antecedents"]}
    pq = tmp_path / "r.parquet"
    res = CliRunner().invoke(command, [str(f), "--min-support", "0.4", "--min-confidence", "0.6", "--out", str(pq),
                                       "--single-consequent"])
    assert res.exit_code == 0, res.output
    assert len(pd.read_parquet(pq)) == len(FPGrowth(0.4).fit(BASKETS).rules(min_confidence=0.6, single_consequent=True))
    res = CliRunner().invoke(command, [str(f), "--min-support", "0", "--min-confidence", "0.6"])
    assert res.exit_code != 0 and "min_support" in res.output
    dat = tmp_path / "b.dat"
    dat.write_text("1 2 3\n1 2\n2 3\n1 2 3\n")
    res = CliRunner().invoke(command, [str(dat), "--min-support", "2", "--itemsets"])
    assert res.exit_code == 0 and "1,2" in res.output


# mlxtend's association_rules test fixture (mlxtend/frequent_patterns/tests/test_association_rules.py):
# 5 baskets over 11 items, apriori at support 0.6; the rule counts per metric are its test's.
MLX_ONEHOT = np.array([[0, 0, 0, 1, 0, 1, 1, 1, 1, 0, 1], [0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1],
                       [1, 0, 0, 1, 0, 1, 1, 0, 0, 0, 0], [0, 1, 0, 0, 0, 1, 1, 0, 0, 1, 1],
                       [0, 1, 0, 1, 1, 1, 0, 0, 1, 0, 0]], dtype=bool)
MLX_COLS = ["Apple", "Corn", "Dill", "Eggs", "Ice cream", "Kidney Beans", "Milk", "Nutmeg", "Onion", "Unicorn", "Yogurt"]
MLX_COUNTS = [("representativity", 1.0, 16), ("leverage", 0.1, 6), ("conviction", 1.5, 11), ("lift", 1.1, 6),
              ("confidence", 0.8, 9), ("jaccard", 0.7, 8), ("certainty", 0.6, 3), ("kulczynski", 0.9, 2),
              ("kulczynski", 0.6, 16), ("support", 0.8, 2)]


@pytest.mark.parametrize("metric,thr,n", MLX_COUNTS)
def test_every_documented_metric_as_threshold_mlxtend_fixture(metric, thr, n):
    df = pd.DataFrame(MLX_ONEHOT, columns=MLX_COLS)
    fp = FPGrowth(min_support=0.6).fit(df)
    assert len(fp.rules(metric=metric, min_threshold=thr)) == n
    assert fp.count_rules(metric=metric, min_threshold=thr) == n
    assert len(fp.rules(metric=metric, min_threshold=thr, top_k=50)) == n
    assert len(association_rules(fp.itemsets(), metric=metric, min_threshold=thr)) == n
    assert len(Apriori(0.6).fit(df).rules(metric=metric, min_threshold=thr)) == n


def test_metric_columns_all_accepted_and_mlxtend_default_table():
    from tastebud.models.rules.metrics import METRIC_CODES, METRICS

    assert set(METRIC_CODES) == set(METRICS)  # every column of the result can be thresholded
    fp = FPGrowth(min_support=0.6).fit(pd.DataFrame(MLX_ONEHOT, columns=MLX_COLS))
    for m in METRICS:
        assert len(fp.rules(metric=m, min_threshold=-1e9)) == 16, m
    # mlxtend's test_default: the 9 rules at confidence 0.8 with every column (items by column index)
    name = dict(enumerate(MLX_COLS))
    expect = {((8,), (5,)): [0.6, 1.0, 0.6, 1.0, 1.0, 1.0, 0.0, np.inf, 0, 0.6, 0.0, 0.8],
              ((6,), (5,)): [0.6, 1.0, 0.6, 1.0, 1.0, 1.0, 0.0, np.inf, 0, 0.6, 0.0, 0.8],
              ((8, 3), (5,)): [0.6, 1.0, 0.6, 1.0, 1.0, 1.0, 0.0, np.inf, 0, 0.6, 0.0, 0.8],
              ((8, 5), (3,)): [0.6, 0.8, 0.6, 1.0, 1.25, 1.0, 0.12, np.inf, 0.5, 0.75, 1.0, 0.875],
              ((8,), (3, 5)): [0.6, 0.8, 0.6, 1.0, 1.25, 1.0, 0.12, np.inf, 0.5, 0.75, 1.0, 0.875],
              ((3,), (5,)): [0.8, 1.0, 0.8, 1.0, 1.0, 1.0, 0.0, np.inf, 0, 0.8, 0.0, 0.9],
              ((5,), (3,)): [1.0, 0.8, 0.8, 0.8, 1.0, 1.0, 0.0, 1.0, 0.0, 0.8, 0.0, 0.9],
              ((10,), (5,)): [0.6, 1.0, 0.6, 1.0, 1.0, 1.0, 0.0, np.inf, 0, 0.6, 0.0, 0.8],
              ((8,), (3,)): [0.6, 0.8, 0.6, 1.0, 1.25, 1.0, 0.12, np.inf, 0.5, 0.75, 1.0, 0.875]}
    got = fp.rules(min_threshold=0.8)
    assert len(got) == 9 and list(got.columns) == ["antecedents", "consequents", *METRICS]
    rows = {(a, c): r for a, c, r in zip(got["antecedents"], got["consequents"], got[list(METRICS)].to_numpy())}
    for (a, c), want in expect.items():
        np.testing.assert_allclose(rows[(frozenset(name[i] for i in a), frozenset(name[i] for i in c))], want,
                                   atol=1e-12)


def test_metrics_equal_mlxtend_on_its_fixture():
    mlx = pytest.importorskip("mlxtend.frequent_patterns")
    df = pd.DataFrame(MLX_ONEHOT, columns=MLX_COLS)
    ref_its = mlx.apriori(df, min_support=0.6, use_colnames=True)
    fp = FPGrowth(min_support=0.6).fit(df)
    for metric, thr, n in MLX_COUNTS:
        with np.errstate(divide="ignore", invalid="ignore"):
            ref = mlx.association_rules(ref_its, len(df), metric=metric, min_threshold=thr)
        mine = fp.rules(metric=metric, min_threshold=thr)
        assert len(ref) == len(mine) == n, metric
        assert list(ref.columns) == list(mine.columns)
        a = {(x, y): r for x, y, r in zip(ref["antecedents"], ref["consequents"], ref.iloc[:, 2:].to_numpy(float))}
        b = {(x, y): r for x, y, r in zip(mine["antecedents"], mine["consequents"], mine.iloc[:, 2:].to_numpy(float))}
        assert set(a) == set(b)
        for k in a:
            np.testing.assert_allclose(b[k], a[k], rtol=1e-12, err_msg=f"{metric} {k}")
