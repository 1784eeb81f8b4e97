"""Issue #14 item 6: ``tastebud evaluate --data FILE`` on the user's own files, end to end."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import tastebud as tb
from tastebud.cli import main


def _table(output: str, title_start: str) -> str:
    """The printed block of the table whose title starts with ``title_start``."""
    blocks = re.split(r"\n## ", "\n" + output)
    block = next(b for b in blocks if b.startswith(title_start))
    return block


@pytest.fixture(scope="module")
def ratings_file(tmp_path_factory):
    rng = np.random.default_rng(1)
    n = 3000
    df = pd.DataFrame({"user": rng.integers(1, 120, n), "item": rng.zipf(1.6, n) % 150 + 1,
                       "rating": rng.integers(1, 6, n), "timestamp": rng.permutation(n)})
    df = df.drop_duplicates(["user", "item"])
    p = tmp_path_factory.mktemp("d") / "mine.csv"
    df.to_csv(p, index=False)
    return p, df


@pytest.fixture(scope="module")
def baskets_file(tmp_path_factory):
    rng = np.random.default_rng(2)
    items = [f"item {i}" for i in range(30)]
    lines = []
    for _ in range(600):
        b = set(rng.choice(items, size=int(rng.integers(1, 6)), replace=False).tolist())
        if "item 1" in b:
            b.add("item 2")  # a planted rule
        lines.append(",".join(sorted(b)))
    p = tmp_path_factory.mktemp("b") / "shop.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_evaluate_own_ratings_file(ratings_file, tmp_path):
    path, df = ratings_file
    r = CliRunner().invoke(main, ["evaluate", "--data", str(path), "--quick",
                                  "--models", "baseline,popularity,transitions,fpgrowth,multimodal",
                                  "--report", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    rating = _table(r.output, "rating prediction (mine.csv)")
    assert "top-10 ranking (mine.csv)" in r.output and "next-item (mine.csv)" in r.output
    # the same protocol by hand: an 80/20 holdout of the file's ratings
    inter = tb.Interactions.from_frame(df, rating="rating", timestamp="timestamp")
    train, test = tb.split.holdout(inter, test_size=0.2, per_user=False, random_state=0)
    want = tb.evaluate(tb.BaselinePredictor(**tb.BaselinePredictor.demo_params).fit(train), test, ["rmse"])["rmse"]
    assert f"{want:.4f}" in rating
    # counts are integers, never "32.0000"
    fallbacks = re.search(r"baseline\s+\S+\s+\S+\s+\S+\s+(\S+)", rating).group(1)
    assert re.fullmatch(r"\d+", fallbacks), rating
    # models that do not apply are reported with the reason, not dropped
    skipped = _table(r.output, "skipped models")
    assert re.search(r"fpgrowth\s+needs baskets", skipped) and "multimodal" in skipped
    assert (tmp_path / "rep" / "README.md").exists()


def test_evaluate_implicit_file_skips_rating_models_with_reason(ratings_file, tmp_path):
    _, df = ratings_file
    p = tmp_path / "clicks.tsv.txt"
    df[["user", "item"]].to_csv(p, sep="\t", index=False)
    r = CliRunner().invoke(main, ["evaluate", "--data", str(p), "--sep", "\\t", "--quick", "--models", "baseline,popularity"])
    assert r.exit_code == 0, r.output
    assert "top-10 ranking (clicks.tsv.txt)" in r.output
    assert re.search(r"baseline\s+needs explicit ratings", _table(r.output, "skipped models"))
    # nothing applies at all: one error line that gives each reason
    r = CliRunner().invoke(main, ["evaluate", "--data", str(p), "--sep", "\\t", "--models", "baseline"])
    assert r.exit_code != 0 and "Traceback" not in r.output and "needs explicit ratings" in r.output


def test_evaluate_basket_file_rules_and_item2vec(baskets_file):
    r = CliRunner().invoke(main, ["evaluate", "--data", str(baskets_file), "--quick",
                                  "--models", "fpgrowth,rules,item2vec,baseline"])
    assert r.exit_code == 0, r.output
    table = _table(r.output, "baskets: hidden item (shop.csv)")
    for name in ("fpgrowth", "rules", "item2vec", "popularity"):
        assert re.search(rf"^\s*{name}\s", table, re.M), table
    assert re.search(r"baseline\s+needs user-item interactions; shop.csv holds baskets", _table(r.output, "skipped models"))


def test_basket_protocol_matches_the_rule_recommenders_own_evaluation(baskets_file):
    from tastebud.evaluation.runner import baskets_table
    from tastebud.model_io import load_dataset_file
    from tastebud.models.rules.recommender import evaluate_hidden_item, split_baskets

    ds = load_dataset_file(baskets_file)
    df = baskets_table(ds, ["rules"], quick=False).set_index("model")
    train, test = split_baskets(ds.baskets, test_size=0.2, random_state=0)
    ref = evaluate_hidden_item(tb.RuleRecommender().fit(train), test, k=10)
    assert df.loc["rules", "hit_rate@10"] == pytest.approx(ref["rules_hit_rate@10"])
    assert df.loc["popularity", "mrr@10"] == pytest.approx(ref["popularity_mrr@10"])


def test_evaluate_pairs_file_sequence_models(tmp_path):
    seqs, _ = tb.synthetic.planted_sequences(n_users=300, n_items=120, min_length=4, max_length=12, random_state=0)
    p = tmp_path / "sessions.txt"
    p.write_text("".join(f"{u} {i}\n" for u, items in zip(seqs.users.ids, seqs.to_lists()) for i in items))
    r = CliRunner().invoke(main, ["evaluate", "--data", str(p), "--quick", "--models", "transitions,item2vec"])
    assert r.exit_code == 0, r.output
    table = _table(r.output, "next-item (sessions.txt)")
    hits = {m: float(v) for m, v in re.findall(r"^\s*(\w+)\s+([0-9.]+)", table, re.M)}
    assert hits["transitions"] > 3 * hits["popularity"]  # the planted successors are found
    # the same pairs as a headerless CSV: split on commas, not whitespace
    q = tmp_path / "sessions.csv"
    q.write_text(p.read_text().replace(" ", ","))
    r = CliRunner().invoke(main, ["fit", "transitions", "--data", str(q), "--out", str(tmp_path / "t.tb")])
    assert r.exit_code == 0, r.output
    assert tb.load(tmp_path / "t.tb").n_items == seqs.n_items


def test_fit_item2vec_on_a_basket_file_and_tab_separator(baskets_file, ratings_file, tmp_path):
    out = tmp_path / "i2v.tb"
    r = CliRunner().invoke(main, ["fit", "item2vec", "--data", str(baskets_file), "--out", str(out), "-p", "epochs=2"])
    assert r.exit_code == 0, r.output
    m = tb.load(out)
    assert m.mode == "basket" and "item 1" in set(m.items_.ids.tolist())
    # --sep '\t' as a shell passes it (backslash, t)
    _, df = ratings_file
    p = tmp_path / "r.txt"
    df.to_csv(p, sep="\t", index=False)
    r = CliRunner().invoke(main, ["fit", "baseline", "--data", str(p), "--sep", "\\t", "--out", str(tmp_path / "b.tb")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["evaluate", "--models", "baseline"])
    assert r.exit_code != 0 and "--dataset NAME or --data FILE" in r.output


def test_fallback_counts_are_integers(ratings_file):
    # issue #14 item 10: "fallbacks 32.0000" - a count is printed as an integer
    from tastebud.evaluation.runner import rating_table
    from tastebud.model_io import load_dataset_file

    path, _ = ratings_file
    df = rating_table(load_dataset_file(path), ["baseline"], quick=True)
    assert df["fallbacks"].dtype.kind == "i" and df["fallbacks"].iloc[0] > 0
    assert "." not in df[["fallbacks"]].to_string(index=False, float_format=lambda x: f"{x:.4f}")
