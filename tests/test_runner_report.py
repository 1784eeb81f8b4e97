import pandas as pd
import pytest

import tastebud as tb
from tastebud.evaluation.report import write_report
from tastebud.evaluation.runner import run_comparison


def test_run_comparison_matches_direct_evaluation(data_dir, tmp_path):
    tables = run_comparison("movielens-100k", ["baseline", "popularity"], quick=True, report_dir=str(tmp_path))
    rating = next(v for k, v in tables.items() if k.startswith("rating"))
    topn = next(v for k, v in tables.items() if k.startswith("top-10"))
    ds = tb.datasets.load("movielens-100k")
    train, test = tb.split.official_folds(ds)[0]
    direct = tb.evaluate(tb.BaselinePredictor().fit(train), test, metrics=["rmse"])
    assert rating.loc[rating.model == "baseline", "rmse"].item() == pytest.approx(direct["rmse"])
    tr, te = tb.split.holdout(ds.interactions.binarize(), test_size=0.2, per_user=True, random_state=0)
    d2 = tb.evaluate(tb.Popularity().fit(tr), te, metrics=["ndcg@10"])
    assert topn.loc[topn.model == "popularity", "ndcg@10"].item() == pytest.approx(d2["ndcg@10"])
    md = (tmp_path / "README.md").read_text()
    assert "| baseline |" in md and (tmp_path / "top-10-ranking-movielens-100k.csv").exists()


def test_run_comparison_rejects_unknown_model(data_dir):
    with pytest.raises(KeyError, match="unknown model"):
        run_comparison("movielens-100k", ["nope"])


def test_write_report_tables_and_plots(tmp_path):
    df = pd.DataFrame({"model": ["a", "b"], "rmse": [0.9, 0.95], "fit_s": [1.0, 2.0]})
    out = write_report({"My Table": df}, tmp_path / "r", notes=["a note"])
    text = (out / "README.md").read_text()
    assert "## My Table" in text and "| a | 0.9000 | 1.0000 |" in text and "- a note" in text
    back = pd.read_csv(out / "my-table.csv")
    pd.testing.assert_frame_equal(back, df)
    pytest.importorskip("matplotlib")
    assert (out / "my-table.png").stat().st_size > 1000
