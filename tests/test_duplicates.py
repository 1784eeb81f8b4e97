"""Issue #14 item 2: duplicate explicit ratings keep their scale (latest by timestamp, else mean) and
warn with the count; implicit weights and plain rows are summed. Tested via from_frame, from_csv,
from_parquet and the CLI's fit path."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pandas as pd
import pytest
from click.testing import CliRunner

import tastebud as tb
from tastebud.cli import main

ROWS = "user,item,rating\n1,10,4\n1,10,4\n1,10,4\n1,11,2\n2,10,5\n2,11,3\n3,11,1\n3,12,5\n"


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"user": [1, 1, 1, 1, 2, 2, 3, 3], "item": [10, 10, 10, 11, 10, 11, 11, 12],
                         "rating": [4, 4, 4, 2, 5, 3, 1, 5]})


def test_repeated_rating_stays_on_scale_and_warns():
    with pytest.warns(UserWarning, match=r"2 duplicate \(user, item\) row\(s\) in 1 pair"):
        x = tb.Interactions.from_frame(_frame(), rating="rating")
    assert x.matrix[x.users.index([1])[0], x.items.index([10])[0]] == 4.0  # was 12 (summed)
    assert x.nnz == 6
    for model in (tb.BaselinePredictor(), tb.MatrixFactorization(epochs=30, random_state=0)):
        p = model.fit(x).predict([1], [10])[0]
        assert 1.0 <= p <= 5.0  # MF said 5.97 when the three rows summed to 12


def test_latest_by_timestamp_else_mean():
    df = pd.DataFrame({"user": [1, 1, 1], "item": [10, 10, 10], "rating": [5, 1, 3], "ts": [30, 10, 20]})
    with pytest.warns(UserWarning, match="latest"):
        x = tb.Interactions.from_frame(df, rating="rating", timestamp="ts")
    assert x.matrix[0, 0] == 5.0  # the rating at ts=30, not the last row
    with pytest.warns(UserWarning, match="mean"):
        y = tb.Interactions.from_frame(df, rating="rating")
    assert y.matrix[0, 0] == 3.0


def test_implicit_weights_and_rows_are_summed_without_warning():
    df = pd.DataFrame({"user": [1, 1, 1, 2], "item": [10, 10, 10, 10], "plays": [4, 4, 4, 1]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w = tb.Interactions.from_frame(df, weight="plays")
        c = tb.Interactions.from_frame(df)  # no values: every row counts 1
        e = tb.Interactions.from_frame(df.rename(columns={"plays": "rating"}), rating="rating", duplicates="sum")
    assert w.matrix[0, 0] == 12.0 and c.matrix[0, 0] == 3.0 and e.matrix[0, 0] == 12.0  # explicit duplicates= wins
    with pytest.raises(tb.DataError, match="not both"):
        tb.Interactions.from_frame(df.assign(rating=1), rating="rating", weight="plays")


def test_file_readers_follow_the_same_policy(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text(ROWS)
    with pytest.warns(UserWarning, match="r.csv: 2 duplicate"):
        x = tb.Interactions.from_csv(p, rating="rating")
    assert x.matrix.max() == 5.0
    q = tmp_path / "r.parquet"
    _frame().to_parquet(q)
    with pytest.warns(UserWarning, match="2 duplicate"):
        y = tb.Interactions.from_parquet(q, rating="rating")
    assert (x.matrix != y.matrix).nnz == 0
    z = tb.Interactions.from_parquet(q, weight="rating")
    assert z.matrix.max() == 12.0


def test_cli_fit_keeps_ratings_on_scale(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text(ROWS)
    out = tmp_path / "m.tb"
    # a real process: the warning must reach the terminal as one line, not a source excerpt
    proc = subprocess.run([sys.executable, "-m", "tastebud.cli", "fit", "mf", "--data", str(p), "--out", str(out),
                           "-p", "epochs=30"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "duplicate" in ln]
    assert len(lines) == 1 and "2 duplicate" in lines[0] and "mean" in lines[0], proc.stderr
    r = CliRunner().invoke(main, ["predict", str(out), "--user", "1", "--item", "10"])
    assert r.exit_code == 0 and 1.0 <= float(r.output) <= 5.0
    # implicit counts from the CLI: --weight-col sums
    r = CliRunner().invoke(main, ["fit", "popularity", "--data", str(p), "--out", str(out), "--weight-col", "rating",
                                  "-p", "weighted=true"])
    assert r.exit_code == 0, r.output
    m = tb.load(out)
    assert m.popularity_[m.items_.index([10])[0]] == 17.0  # 4+4+4+5
    r = CliRunner().invoke(main, ["fit", "baseline", "--data", str(p), "--out", str(out), "--duplicates", "max"])
    assert r.exit_code == 0 and "duplicate" not in r.output
