"""Issue #14 item 5: errors at the CLI are one line naming the cause, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import tastebud as tb
from tastebud.cli import main


@pytest.fixture()
def ratings_csv(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({"user": rng.integers(1, 30, n), "item": rng.integers(1, 40, n), "rating": rng.integers(1, 6, n)})
    df = df.drop_duplicates(["user", "item"])
    p = tmp_path / "ratings.csv"
    df.to_csv(p, index=False)
    return p


def _one_line_error(r, *needles: str) -> str:
    assert r.exit_code != 0
    # a ClickException ends in SystemExit; anything else would have been a traceback outside CliRunner
    assert isinstance(r.exception, SystemExit), repr(r.exception)
    text = r.output.strip()
    assert "Traceback" not in text
    errors = [ln for ln in text.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1, text
    for n in needles:
        assert n in errors[0], errors[0]
    return errors[0]


def _serve_bad_file(tmp_path, ratings_csv):
    bad = tmp_path / "bad.tb"
    bad.write_text("not a model")
    return ["serve", str(bad)], ["bad.tb", "not a tastebud model file"], []


def _unknown_dataset(tmp_path, ratings_csv):
    return ["datasets", "info", "UNKNOWN"], ["unknown dataset 'UNKNOWN'", "movielens-100k"], []


def _bias_divergence(tmp_path, ratings_csv):
    # MF whose bias rate diverges: the message names lr_bias, not lr
    args = ["fit", "mf", "--data", str(ratings_csv), "--out", str(tmp_path / "m.tb"), "-p", "lr_bias=3"]
    return args, ["diverged", "lr_bias=3", "lower lr_bias"], ["lower lr (", "lower lr "]


def _nan_rating_line(tmp_path, ratings_csv):
    # NaN rating: the file's line number (header and blank line counted), no np.float64(nan)
    nan = tmp_path / "nan.csv"
    nan.write_text("user,item,rating\n1,10,4\n2,11,3\n\n3,12,\n")
    args = ["fit", "baseline", "--data", str(nan), "--out", str(tmp_path / "m.tb")]
    return args, ["nan.csv", "line 5", "'rating'", "missing"], ["np.float64", "row"]


@pytest.mark.parametrize("case", [_serve_bad_file, _unknown_dataset, _bias_divergence, _nan_rating_line],
                         ids=["serve-bad-model", "datasets-info-unknown", "lr_bias-divergence", "nan-rating-line"])
def test_bad_cases_name_their_cause(tmp_path, ratings_csv, case):
    args, wanted, unwanted = case(tmp_path, ratings_csv)
    line = _one_line_error(CliRunner().invoke(main, args), *wanted)
    for u in unwanted:
        assert u not in line, line


def test_factor_divergence_still_blames_lr():
    R, _ = tb.synthetic.low_rank_ratings(n_users=100, n_items=60, rank=3, density=0.3, random_state=0)
    with pytest.raises(FloatingPointError, match=r"factor updates diverged; lower lr \(now 2.0\)"):
        tb.MatrixFactorization(lr=2.0, lr_bias=0.005, epochs=5, random_state=0).fit(R)
    with pytest.raises(FloatingPointError, match=r"lr_bias=1.5 is at or above their stability limit"):
        tb.MatrixFactorization(lr=0.005, lr_bias=1.5, epochs=5, random_state=0).fit(R)
    with pytest.raises(FloatingPointError, match=r"lr=1.5 \(also the bias rate"):
        tb.MatrixFactorization(lr=1.5, epochs=5, random_state=0).fit(R)


def test_serve_bad_model_in_a_real_process(tmp_path):
    bad = tmp_path / "bad.tb"
    bad.write_bytes(b"PK\x03\x04 truncated")
    proc = subprocess.run([sys.executable, "-m", "tastebud.cli", "serve", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("Error:") and "bad.tb" in proc.stderr
