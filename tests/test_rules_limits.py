"""Size guards and streaming of the association-rule family (issue 14 item 3, issue 15 item 5):
the guards trigger on a planted dense case with the documented message and a support that
really fits; the streamed Parquet files equal the in-memory results; counting is exact, with
closed forms and an early stop; the CLI never materialises more than it shows."""

import os
import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from tastebud.exceptions import ResultTooLargeError
from tastebud.models.rules import fpgrowth as fpmod
from tastebud.models.rules.apriori import Apriori
from tastebud.models.rules.association import association_rules
from tastebud.models.rules.fpgrowth import FPGrowth
from tastebud.models.rules.limits import DEFAULT_MAX_ITEMSETS, DEFAULT_MAX_RULES, support_text
from tastebud.models.rules.metrics import METRICS
from tastebud.models.rules.recommender import RuleRecommender


def dense(n=300, m=16, seed=0, names=False):
    """Planted dense baskets: item j in a basket with probability 0.5..0.9, so almost every
    subset of the 16 items is frequent at a count of 2 (65,151 itemsets, 3,173,373 rules at
    confidence 0.5 over all splits)."""
    rng = np.random.default_rng(seed)
    p = np.linspace(0.5, 0.9, m)
    bs = [np.flatnonzero(rng.random(m) < p).tolist() for _ in range(n)]
    return [[f"item {j}" for j in b] for b in bs] if names else bs


BS = dense()
N_ITEMSETS, N_RULES = 65_151, 3_173_373


def threshold(msg: str) -> tuple[int, int]:
    """(count threshold, result size) of the "min_support=... (count >= C) gives N" advice."""
    m = re.search(r"min_support=[0-9.e-]+ \(count >= ([0-9,]+)\) gives (?:at most )?([0-9,]+)", msg)
    assert m, msg
    return int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))


def test_defaults_are_the_documented_numbers():
    fp = FPGrowth()
    assert (fp.max_itemsets, fp.max_rules) == (DEFAULT_MAX_ITEMSETS, DEFAULT_MAX_RULES) == (100_000_000, 10_000_000)
    doc = (Path(__file__).parents[1] / "docs" / "association_rules.md").read_text()
    for text in ("100,000,000", "10,000,000", "5,000,000", "max_len", "ResultTooLargeError", "rules_to_parquet",
                 "itemsets_to_parquet"):
        assert text in doc, text


def test_mining_guard_states_count_and_lowest_fitting_support():
    full = FPGrowth(2, max_itemsets=None).fit(BS)
    assert full.n_itemsets_ == N_ITEMSETS
    with pytest.raises(ResultTooLargeError, match=r"more than max_itemsets=5,000 frequent itemsets at "
                       r"min_support=0\.006 \(count >= 2\) of 300 baskets: mining stopped after [0-9,]+ itemsets") as e:
        FPGrowth(2, max_itemsets=5000).fit(BS)
    assert "the lowest support that fits" in str(e.value)
    c, got = threshold(str(e.value))
    # independent truth: the counts of the complete mining
    counts = full.itemsets(max_rows=None)["count"].to_numpy()
    assert got == (counts >= c).sum() <= 5000 < (counts >= c - 1).sum()
    assert FPGrowth(c, max_itemsets=5000).fit(BS).n_itemsets_ == got  # and it does fit
    # max_len is taken into account, and the error is also a ValueError (the CLI's one-line errors)
    with pytest.raises(ValueError, match="max_len=3"):
        FPGrowth(2, max_len=3, max_itemsets=100).fit(BS)


def test_mining_guard_on_apriori_names_the_same_support():
    with pytest.raises(ResultTooLargeError, match="Apriori.fit: more than max_itemsets=3,000") as e:
        Apriori(2, max_itemsets=3000).fit(BS)
    c, got = threshold(str(e.value))
    assert len(Apriori(c, max_itemsets=3000).fit(BS).itemsets()) == got <= 3000
    assert len(Apriori(c - 1, max_itemsets=None).fit(BS).itemsets()) > 3000


def test_rules_guard_exact_count_and_fitting_support():
    fp = FPGrowth(2, max_rules=100_000).fit(BS)
    for call in (lambda: fp.rules(min_confidence=0.5), lambda: fp.rule_arrays(min_confidence=0.5),
                 lambda: fp.check_rule_count(min_confidence=0.5)):
        with pytest.raises(ResultTooLargeError, match=r": 3,173,373 rules \(confidence >= 0.5, every antecedent/"
                           r"consequent split, min_support=0\.006 \(count >= 2\)\) is more than max_rules=100,000; "
                           r"as a DataFrame they would take about 514\.5 MB") as e:
            call()
    c, got = threshold(str(e.value))
    assert "gives at most" not in str(e.value)
    assert FPGrowth(c).fit(BS).count_rules(min_threshold=0.5) == got <= 100_000
    assert FPGrowth(c - 1).fit(BS).count_rules(min_threshold=0.5) > 100_000
    assert len(FPGrowth(c, max_rules=100_000).fit(BS).rules(min_threshold=0.5)) == got
    # not guarded: the streamed best k (with the total count), counting, streaming
    top = fp.rules(min_confidence=0.5, top_k=7)
    assert len(top) == 7 and top.attrs["n_rules"] == N_RULES
    assert fp.count_rules(min_threshold=0.5) == N_RULES
    assert sum(len(d) for d in fp.iter_rules(min_threshold=0.9, chunk_size=100_000)) == fp.count_rules(min_threshold=0.9)
    # a threshold that leaves few rules passes the guard (counted, not refused on the upper bound)
    few = fp.rules(metric="lift", min_threshold=3.0)
    assert len(few) == fp.count_rules(metric="lift", min_threshold=3.0) == 79_714 < 100_000 < fp.rule_count_bound()


def test_rules_guard_past_the_counting_budget_gives_an_upper_bound(monkeypatch):
    monkeypatch.setattr(fpmod, "_COUNT_MIN", 0)  # budget 20 x max_rules: counting stops early
    fp = FPGrowth(2, max_rules=1000).fit(BS)
    with pytest.raises(ResultTooLargeError, match=r": more than [0-9,]+ rules .* is more than max_rules=1,000") as e:
        fp.rules(min_confidence=0.5, single_consequent=True)
    c, at_most = threshold(str(e.value))
    assert "gives at most" in str(e.value)
    assert FPGrowth(c).fit(BS).count_rules(min_threshold=0.5, single_consequent=True) <= at_most <= 1000


def test_guards_of_the_recommender_and_of_dataframe_rules():
    with pytest.raises(ResultTooLargeError, match="max_rules=1,000"):
        RuleRecommender(min_support=2, min_confidence=0.5, max_len=None, max_rules=1000).fit(BS)
    with pytest.raises(ResultTooLargeError, match="max_itemsets=100"):
        RuleRecommender(min_support=2, max_itemsets=100).fit(BS)
    rec = RuleRecommender(min_support=0.3, min_confidence=0.5, max_len=3, max_rules=1300).fit(BS)
    assert 1000 < rec.n_rules_ <= 1300
    its = FPGrowth(0.2).fit(BS).itemsets()
    with pytest.raises(ResultTooLargeError, match=r"candidate rules .* is more than max_rules=500") as e:
        association_rules(its, max_rules=500)
    s = float(re.search(r"support >= ([0-9.e-]+) give at most ([0-9,]+)", str(e.value)).group(1))
    assert len(association_rules(its[its["support"] >= s], max_rules=500, min_threshold=0.0)) <= 500
    assert len(association_rules(its, max_rules=None)) == FPGrowth(0.2).fit(BS).count_rules()


def test_itemset_frames_are_guarded():
    fp = FPGrowth(2).fit(BS)
    with pytest.raises(ResultTooLargeError, match=r"FPGrowth.itemsets: 65,151 rows is more than max_rows=1,000; "
                       r"the DataFrame would take about .*itemsets_to_parquet"):
        fp.itemsets(max_rows=1000)
    with pytest.raises(ResultTooLargeError, match="FPGrowth.itemset_arrays: 65,151 rows"):
        fp.itemset_arrays(max_rows=1000)
    long = fp.itemsets(min_len=13, max_rows=1000)  # the limit applies to the rows asked for
    assert 0 < len(long) == sum(len(s) >= 13 for s in fp.itemsets(max_rows=None)["itemsets"]) <= 1000
    top = fp.itemsets(top_k=5, max_rows=1000)  # the best rows only: never guarded
    pd.testing.assert_frame_equal(top, fp.itemsets(sort=True).head(5))


def test_counting_closed_forms_and_early_stop():
    fp = FPGrowth(0.2).fit(dense(names=True))
    lens = np.array([len(s) for s in fp.itemsets()["itemsets"]])
    assert fp.rule_count_bound() == int(sum(2**d - 2 for d in lens if d >= 2))
    assert fp.rule_count_bound(single_consequent=True) == int(lens[lens >= 2].sum())
    for single in (False, True):
        everything = len(fp.rules(min_threshold=0.0, single_consequent=single))
        assert fp.count_rules(min_threshold=0.0, single_consequent=single) == fp.rule_count_bound(single) == everything
        for metric, thr in (("representativity", 1.0), ("support", 0.3), ("lift", 0.0), ("confidence", 0.7)):
            want = len(fp.rules(metric=metric, min_threshold=thr, single_consequent=single))
            assert fp.count_rules(metric=metric, min_threshold=thr, single_consequent=single) == want
            assert fp.count_rules(metric=metric, min_threshold=thr, single_consequent=single, limit=want) == want
            if want > 10:
                assert fp.count_rules(metric=metric, min_threshold=thr, single_consequent=single, limit=10) > 10
        assert fp.count_rules(metric="representativity", min_threshold=1.01, single_consequent=single) == 0


def test_count_rules_warns_before_a_very_long_count(monkeypatch):
    fp = FPGrowth(0.2).fit(BS)
    monkeypatch.setattr(fpmod, "_COUNT_WARN", fp.rule_count_bound() - 1)
    with pytest.warns(UserWarning, match=r"count_rules tests 85,820 candidate rules one by one .* limit=N"):
        n = fp.count_rules(min_threshold=0.6)
    assert n == len(fp.rules(min_threshold=0.6))


@pytest.mark.parametrize("names", [False, True])
def test_streamed_parquet_equals_in_memory(tmp_path, names):
    bs = dense(names=names)
    fp = FPGrowth(0.2).fit(bs)
    for single, metric, thr in ((False, "confidence", 0.6), (True, "lift", 1.0)):
        want = fp.rules(metric=metric, min_threshold=thr, single_consequent=single)
        path = tmp_path / f"r{single}.parquet"
        n = fp.rules_to_parquet(path, metric=metric, min_threshold=thr, single_consequent=single, chunk_size=997)
        meta = pq.ParquetFile(path).metadata
        assert n == len(want) > 5000 and meta.num_row_groups > n // 997
        assert max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) <= 997
        got = pd.read_parquet(path)
        assert list(got.columns) == ["antecedents", "consequents", *METRICS]
        assert all(list(v) == sorted(v) for v in got["antecedents"].head(100))  # lists sorted by id
        key = lambda df: [(frozenset(a), frozenset(c)) for a, c in zip(df["antecedents"], df["consequents"])]  # noqa: E731
        kw, kg = key(want), key(got)
        assert set(kw) == set(kg) and len(set(kg)) == n
        pos = {k: i for i, k in enumerate(kg)}
        order = [pos[k] for k in kw]
        for m in METRICS:
            np.testing.assert_array_equal(got[m].to_numpy()[order], want[m].to_numpy(), err_msg=m)
    # chunks smaller than the rules of one itemset
    deep = FPGrowth(60).fit(BS)
    assert deep._max_depth() == 8  # an itemset of 8 items has 254 splits
    sizes = [len(c) for c in deep.iter_rules(min_threshold=0.0, chunk_size=100)]
    assert max(sizes) <= 100 and sum(sizes) == deep.rule_count_bound() == 85_820
    # itemsets, all and by length
    for min_len in (1, 3):
        want = fp.itemsets(min_len=min_len)
        path = tmp_path / f"i{min_len}.parquet"
        assert fp.itemsets_to_parquet(path, min_len=min_len, chunk_size=1000) == len(want)
        got = pd.read_parquet(path)
        assert list(got.columns) == ["support", "itemsets", "count"]
        assert [frozenset(s) for s in got["itemsets"]] == list(want["itemsets"])
        np.testing.assert_array_equal(got["count"], want["count"])
        np.testing.assert_array_equal(got["support"], want["support"])
    # nothing to write: an empty file with the same columns; no temporary file left behind
    path = tmp_path / "none.parquet"
    assert fp.rules_to_parquet(path, min_threshold=2.0) == 0
    assert list(pd.read_parquet(path).columns) == ["antecedents", "consequents", *METRICS]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_streaming_memory_is_bounded_by_the_chunk(tmp_path):
    """numpy memory (traced) while streaming 535,375 rules in chunks of 5,000 stays a small
    fraction of what the same rules take as index arrays, and does not grow with their number
    (benchmarks/rules_memory.py measures the whole process)."""
    fp = FPGrowth(8).fit(BS)
    assert fp.count_rules(min_threshold=0.7) == 535_375 and fp.count_rules(min_threshold=0.9) == 83_544

    def peak(fn) -> int:
        tracemalloc.start()
        try:
            fn()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    arrays = peak(lambda: fp.rule_arrays(min_threshold=0.7))
    many = peak(lambda: fp.rules_to_parquet(tmp_path / "r.parquet", min_threshold=0.7, chunk_size=5_000))
    fewer = peak(lambda: fp.rules_to_parquet(tmp_path / "r.parquet", min_threshold=0.9, chunk_size=5_000))
    assert many < 0.25 * arrays
    assert many < 1.5 * fewer


def test_cli_shows_the_best_rules_and_guards_files(tmp_path):
    from tastebud.cli_commands.rules import command

    f = tmp_path / "dense.csv"
    f.write_text("\n".join(",".join(f"i{j}" for j in b) for b in BS) + "\n")
    run = lambda *a: CliRunner().invoke(command, [str(f), *a])  # noqa: E731
    res = run("--min-support", "2")  # the issue's shape of command: everything at a count of 2
    assert res.exit_code == 0, res.output
    assert "300 baskets, 65,151 frequent itemsets, 3,173,373 rules (the best 50 by confidence shown" in res.output
    out = tmp_path / "r.parquet"
    res = run("--min-support", "2", "--max-rules", "100000", "--out", str(out))
    assert res.exit_code == 1 and not out.exists()
    assert "3,173,373 rules" in res.output and "--max-rules100,000" not in res.output
    assert re.search(r"--min-support 0\.153 \(count >= 46\) gives 98,627 rules, which fits", res.output), res.output
    assert "Traceback" not in res.output
    res = run("--min-support", "46", "--max-rules", "100000", "--out", str(out))
    assert res.exit_code == 0, res.output
    want = FPGrowth(46).fit([[f"i{j}" for j in b] for b in BS]).rules()
    got = pd.read_parquet(out)
    assert len(got) == len(want) == 98_627
    csv = tmp_path / "r.csv"
    res = run("--min-support", "0.3", "--out", str(csv))
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(csv)) == FPGrowth(0.3).fit([[f"i{j}" for j in b] for b in BS]).count_rules()
    res = run("--min-support", "2", "--max-itemsets", "5000")
    assert res.exit_code == 1 and "more than max_itemsets=5,000" in res.output and "count >= 52" in res.output
    res = run("--min-support", "0.3", "--itemsets")
    assert res.exit_code == 0 and "the 50 with the highest support shown" in res.output


def test_cli_refuses_a_model_file_or_binary_file_in_one_line(tmp_path):
    from tastebud.cli_commands.rules import command

    model = FPGrowth(2).fit([["a", "b"], ["a", "b"], ["c"]]).save(tmp_path / "m.tb")
    res = CliRunner().invoke(command, [str(model)])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.output
    assert res.output.strip() == (f"Error: {model} is not a basket file: it looks like a tastebud model file (a zip "
                                  "with meta.json); `tastebud rules` mines baskets, not a fitted model. Give one basket "
                                  "per line (.dat, .csv) or a Parquet table.")
    for name, data, why in (("b.dat", bytes(range(256)) * 4, "binary file"),
                            ("latin1.csv", "caf\xe9,th\xe9\n".encode("latin-1") * 3 + b"x" * 64, "not UTF-8 text"),
                            ("zip.csv", b"PK\x03\x04" + b"\x00" * 40, "zip archive")):
        p = tmp_path / name
        p.write_bytes(data)
        res = CliRunner().invoke(command, [str(p)])
        assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.output
        assert f"{p} is not a basket file" in res.output and why in res.output and len(res.output.splitlines()) == 1
    # a Parquet file with a .dat name is read as Parquet
    pq_as_dat = tmp_path / "long.dat"
    pd.DataFrame({"transaction": [1, 1, 2, 2, 3], "item": ["a", "b", "a", "b", "c"]}).to_parquet(pq_as_dat)
    res = CliRunner().invoke(command, [str(pq_as_dat), "--min-support", "2", "--itemsets"])
    assert res.exit_code == 0 and "a,b" in res.output


def test_support_text_round_trips():
    from tastebud.models.rules.fpgrowth import min_count_for

    for n in (1, 3, 7, 300, 9835, 8124, 1_000_003):
        for c in sorted({1, 2, 3, 46, n // 3, n - 1, n} & set(range(1, n + 1))):
            m = re.fullmatch(r"min_support=([0-9.e-]+) \(count >= ([0-9,]+)\)", support_text(c, n))
            assert m and int(m.group(2).replace(",", "")) == c
            assert min_count_for(float(m.group(1)), n) == c, (n, c, m.group(0))


@pytest.mark.slow
def test_issue_command_on_groceries_stays_small():
    """`tastebud rules groceries.csv --min-support 2` (790,072 itemsets, 73,028,091 rules) runs in a
    real subprocess under a 3 GB address-space limit and prints the best 50 and the count."""
    root = os.environ.get("TASTEBUD_DATA")
    f = Path(root or "/nonexistent") / "groceries" / "groceries.csv"
    if not f.exists():
        pytest.skip("TASTEBUD_DATA with groceries/groceries.csv is not available")
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    p = subprocess.run([sys.executable, "-m", "tastebud.cli", "rules", str(f), "--min-support", "2"],
                       capture_output=True, text=True, env=env, preexec_fn=limit, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "9,835 baskets, 790,072 frequent itemsets, 73,028,091 rules (the best 50 by confidence shown" in p.stderr
    assert len(p.stdout.splitlines()) == 51
