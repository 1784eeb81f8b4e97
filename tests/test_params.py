"""One name per hyperparameter across models (issue #14 item 7): the vocabulary, deprecated
aliases that warn, files with old names that load silently, and parameter docs for every
registered model (`tastebud models MODEL`, unknown `-p` names)."""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import tastebud as tb
from tastebud._params import one_line, parse_parameters
from tastebud.cli import main
from tastebud.models import registry

HAS_TORCH = importlib.util.find_spec("torch") is not None
NAMES = [n for n in registry.names() if HAS_TORCH or n not in ("sasrec", "multimodal")]
FIXTURES = Path(__file__).parent / "data" / "format_v1"

# (registry name, old name, new name) for every rename of issue #14
RENAMES = [
    ("mf", "n_factors", "factors"), ("mf", "n_epochs", "epochs"), ("mf", "early_stopping_rounds", "patience"),
    ("svdpp", "n_factors", "factors"), ("svdpp", "n_epochs", "epochs"),
    ("svdpp", "early_stopping_rounds", "patience"),
    ("als", "n_factors", "factors"), ("als", "n_epochs", "epochs"), ("als", "early_stopping_rounds", "patience"),
    ("baseline", "n_epochs", "epochs"),
    ("implicit-als", "regularization", "reg"), ("implicit-als", "iterations", "epochs"),
    ("bpr", "learning_rate", "lr"), ("bpr", "regularization", "reg"), ("bpr", "iterations", "epochs"),
    ("ease", "lambda_", "reg"),
    ("fm", "rank", "factors"), ("fm", "n_iter", "epochs"), ("fm", "learning_rate", "lr"), ("fm", "init_stdev", "init_std"),
    ("item2vec", "dim", "factors"), ("item2vec", "negative", "n_negatives"),
    ("multimodal", "dim", "factors"),
]
# names that meant one of the vocabulary's hyperparameters somewhere before the renames
OLD_NAMES = {"n_factors", "n_epochs", "iterations", "learning_rate", "regularization", "rank", "init_stdev",
             "early_stopping_rounds", "lambda_", "dim", "negative"}


@pytest.mark.parametrize("name", NAMES)
def test_no_model_uses_an_old_name(name):
    params = set(registry.get(name)._param_names())
    assert not params & OLD_NAMES
    # PureSVD's n_iter is the randomized SVD's power iterations (scikit-learn's name), not epochs
    assert "n_iter" not in params or name == "puresvd"


@pytest.mark.parametrize("name,old,new", [r for r in RENAMES if r[0] in NAMES])
def test_old_name_warns_and_sets_the_new_one(name, old, new):
    cls = registry.get(name)
    value = 4  # stored as given; validated only in fit
    with pytest.warns(FutureWarning, match=rf"'{old}' is deprecated, use '{new}'"):
        m = cls(**{old: value})
    assert m.get_params()[new] == value and old not in m.get_params()
    with pytest.warns(FutureWarning, match=new):
        assert getattr(m, old) == value  # reading the old attribute name still works
    with pytest.warns(FutureWarning, match=new):
        m.set_params(**{old: value})
    with pytest.raises(TypeError, match=f"both '{old}' and '{new}'"):
        cls(**{old: value, new: value})


def test_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(TypeError, match=r"no parameter 'factorz'; valid parameters: factors, epochs, lr, reg"):
        tb.MatrixFactorization(factorz=3)
    with pytest.raises(ValueError, match="valid parameters: factors"):
        tb.ImplicitALS().set_params(regularisation=0.1)


@pytest.mark.parametrize("name", sorted(json.loads((FIXTURES / "expected.json").read_text())))
def test_files_with_old_parameter_names_load_without_a_warning(name):
    if name in ("sasrec", "multimodal") and not HAS_TORCH:
        pytest.skip("needs torch")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a FutureWarning on load would fail here
        m = tb.load(FIXTURES / f"{name}.tbm")
    params = m.get_params()
    assert not set(params) & OLD_NAMES
    if name in ("mf", "svdpp", "als"):
        assert params["factors"] == 3 and params["epochs"] == 3  # stored as n_factors=3, n_epochs=3
    if name == "fm":
        assert (params["factors"], params["epochs"], params["init_std"]) == (3, 3, 0.1)
    if name == "ease":
        assert params["reg"] == 500.0


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_has_a_one_line_doc(name):
    cls = registry.get(name)
    rows = cls.param_table()
    assert [r[0] for r in rows] == cls._param_names()
    undocumented = [p for p, _, doc in rows if not doc]
    assert not undocumented, f"{cls.__name__}: add these to the docstring's Parameters section: {undocumented}"
    for p, default, _ in rows:
        assert default == cls().get_params()[p] or name == "multimodal"


def test_parameters_section_parser():
    doc = """Title.

    Parameters
    ----------
    a, b : shared text. More.
    c : int
        on the next line
        and continued.
    d : ``x`` (e.g. y. z) stays whole. Second.

    After it, text: not a parameter, the section has ended
    """
    got = parse_parameters(doc)
    assert set(got) == {"a", "b", "c", "d"}
    assert got["a"] == got["b"] == "shared text. More."
    assert got["c"] == "int on the next line and continued."
    assert one_line(got["d"]) == "x (e.g. y. z) stays whole"
    assert parse_parameters("no section") == {}


def test_cli_models_lists_parameters_defaults_and_docs():
    r = CliRunner().invoke(main, ["models", "mf"])
    assert r.exit_code == 0, r.output
    line = next(ln for ln in r.output.splitlines() if ln.strip().startswith("factors "))
    assert "100" in line and "latent dimension" in line
    assert "n_factors → factors" in r.output
    for name in NAMES:
        r = CliRunner().invoke(main, ["models", name])
        assert r.exit_code == 0, (name, r.output)
        for p in registry.get(name)._param_names():
            assert any(ln.strip().startswith(p + " ") for ln in r.output.splitlines()), (name, p)
    r = CliRunner().invoke(main, ["models", "nope"])
    assert r.exit_code != 0 and "unknown model 'nope'" in r.output and "Traceback" not in r.output


def test_cli_fit_unknown_parameter_lists_valid_ones_and_old_names_still_work(tmp_path, caplog):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user": rng.integers(1, 30, 300), "item": rng.integers(1, 40, 300), "rating": rng.integers(1, 6, 300)})
    path = tmp_path / "r.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "m.tb"
    r = CliRunner().invoke(main, ["fit", "mf", "--data", str(path), "--out", str(out), "-p", "factorz=3"])
    assert r.exit_code != 0 and "unknown parameter 'factorz'" in r.output
    assert "valid parameters: factors, epochs, lr, reg" in r.output and "Traceback" not in r.output
    # the CLI prints library warnings as one log line each (no source line)
    r = CliRunner().invoke(main, ["fit", "mf", "--data", str(path), "--out", str(out), "-p", "n_factors=3",
                                  "-p", "epochs=2"])
    assert r.exit_code == 0, r.output
    assert "'n_factors' is deprecated, use 'factors'" in caplog.text
    assert tb.load(out).factors == 3
