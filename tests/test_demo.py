"""`make demo` offline without datasets: every registered model runs on synthetic data with planted
structure, and the planted structure shows in the table."""

import pandas as pd

from tastebud import demo


def test_demo_on_synthetic_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TASTEBUD_DATA", str(tmp_path / "no-data-here"))
    monkeypatch.setenv("TASTEBUD_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "report"
    assert demo.main(["--report", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    for section in ("rating prediction (synthetic-ratings)", "top-10 ranking", "next-item (synthetic-sequences)",
                    "frequent itemsets (synthetic-baskets)"):
        assert section in printed
    md = (out / "README.md").read_text()
    assert "synthetic" in md
    rating = pd.read_csv(out / "rating-prediction-synthetic-ratings.csv")
    assert {"baseline", "mf", "svdpp", "als", "fm"} <= set(rating.model)
    # a rank-5 planted matrix: latent factor models beat the bias-only baseline
    base = rating.set_index("model")["rmse"]
    assert base["fm"] < base["baseline"] and base["svdpp"] < base["baseline"]
    seq = pd.read_csv(out / "next-item-synthetic-sequences.csv").set_index("model")
    # planted successor chains: the transition model finds them, far above popularity
    assert seq.loc["transitions", "hit_rate@10"] > 5 * seq.loc["popularity", "hit_rate@10"]
    assert seq.loc["item2vec", "hit_rate@10"] > 2 * seq.loc["popularity", "hit_rate@10"]
    baskets = pd.read_csv(out / "frequent-itemsets-synthetic-baskets.csv").set_index("model")
    assert baskets.loc["rules", "hit_rate@10"] > baskets.loc["popularity", "hit_rate@10"]
