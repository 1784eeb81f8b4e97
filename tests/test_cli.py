import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import tastebud as tb
from tastebud.cli import main


@pytest.fixture()
def ratings_csv(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({"user": rng.integers(1, 30, n), "item": rng.integers(1, 40, n), "rating": rng.integers(1, 6, n)})
    p = tmp_path / "ratings.csv"
    df.to_csv(p, index=False)
    return p, df


def test_fit_recommend_predict_roundtrip(tmp_path, ratings_csv):
    path, df = ratings_csv
    out = tmp_path / "m.tb"
    r = CliRunner().invoke(main, ["fit", "baseline", "--data", str(path), "--out", str(out), "-p", "reg_u=5", "-p", "epochs=3"])
    assert r.exit_code == 0, r.output
    model = tb.load(out)
    assert model.reg_u == 5 and model.epochs == 3
    user = int(df.user.iloc[0])
    r = CliRunner().invoke(main, ["recommend", str(out), "--user", str(user), "-k", "3", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    ids, _ = model.recommend([user], k=3)
    assert res[0]["items"] == ids[0].tolist()
    item = int(df.item.iloc[0])
    r = CliRunner().invoke(main, ["predict", str(out), "--user", str(user), "--item", str(item)])
    assert r.exit_code == 0 and float(r.output) == pytest.approx(model.predict([user], [item])[0], abs=1e-4)


def test_cli_errors_are_clean(tmp_path, ratings_csv):
    path, _ = ratings_csv
    out = tmp_path / "m.tb"
    r = CliRunner().invoke(main, ["fit", "nope", "--data", str(path), "--out", str(out)])
    assert r.exit_code != 0 and "unknown model 'nope'" in r.output
    r = CliRunner().invoke(main, ["fit", "baseline", "--data", str(path), "--out", str(out), "-p", "oops"])
    assert r.exit_code != 0 and "key=value" in r.output
    r = CliRunner().invoke(main, ["fit", "baseline", "--data", str(path), "--out", str(out), "-p", "bogus=1"])
    assert r.exit_code != 0 and "bogus" in r.output
    CliRunner().invoke(main, ["fit", "baseline", "--data", str(path), "--out", str(out)])
    r = CliRunner().invoke(main, ["recommend", str(out), "--user", "424242"])
    assert r.exit_code != 0 and "424242" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["similar", str(out), "--item", "1"])
    assert r.exit_code != 0 and "item vectors" in r.output
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item,rating\n1,2,x\n")
    r = CliRunner().invoke(main, ["fit", "baseline", "--data", str(bad), "--out", str(out)])
    assert r.exit_code != 0 and "non-numeric" in r.output


def test_models_lists_registry():
    r = CliRunner().invoke(main, ["models"])
    assert r.exit_code == 0
    for name in ("baseline", "popularity", "als", "sasrec", "fpgrowth"):
        assert name in r.output
