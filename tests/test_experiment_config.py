"""Experiment files: every validation error names the file, the line and the key."""

import re
import textwrap
import warnings

import pytest

from tastebud.evaluation.config import ConfigError, key_line, load_config, parse_config, resolve_params

GOOD = textwrap.dedent("""\
    # a comment
    [experiment]
    name = "t"
    seeds = [0, 1]

    [data]
    dataset = "movielens-100k"

    [split]
    method = "holdout"
    test_size = 0.2

    [metrics]
    k = [10, 5]
    ranking = ["ndcg"]

    [tuning]
    method = "grid"
    trials = 4

    [models.mf]
    params = { epochs = 5 }
    search = { factors = [4, 8], lr = { low = 0.001, high = 0.01, log = true } }

    [models."implicit-als"]
    search.factors = [8, 16]
    """)


def _err(text: str, tmp_path=None) -> str:
    with pytest.raises(ConfigError) as e:
        if tmp_path is None:
            parse_config(text, None)
        else:
            p = tmp_path / "exp.toml"
            p.write_text(text)
            load_config(p)
    return str(e.value)


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_good_file_resolves_with_defaults(tmp_path):
    p = tmp_path / "exp.toml"
    p.write_text(GOOD)
    exp = load_config(p)
    r = exp.resolved()
    assert r["metrics"]["k"] == [5, 10]  # sorted, unique
    assert r["metrics"]["primary"] == "ndcg@10"
    assert r["split"]["validation_size"] == 0.2 and r["tuning"]["timeout"] == 300.0
    assert set(r["models"]) == {"mf", "implicit-als"}
    assert r["models"]["implicit-als"]["search"] == {"factors": [8, 16]}
    assert exp.seeds == [0, 1]


@pytest.mark.parametrize("old,new,key,needle,msg", [
    ('method = "holdout"', 'method = "bogus"', "split.method", 'method = "bogus"', "must be one of"),
    ("test_size = 0.2", "test_size = 1.5", "split.test_size", "test_size = 1.5", "strictly between"),
    ("test_size = 0.2", 'test_size = "big"', "split.test_size", 'test_size = "big"', "must be a number"),
    ("trials = 4", "trials = 4\nbudget = 3", "tuning.budget", "budget = 3", "unknown key"),
    ('ranking = ["ndcg"]', 'ranking = ["ndcg", "bleu"]', "metrics.ranking", "bleu", "unknown metric 'bleu'"),
    ("k = [10, 5]", "k = [10, 0]", "metrics.k", "k = [10, 0]", "positive integers"),
    ("seeds = [0, 1]", "seeds = [0, 0]", "experiment.seeds", "seeds = [0, 0]", "twice"),
    ('dataset = "movielens-100k"', 'dataset = "nope"', "data.dataset", 'dataset = "nope"', "unknown dataset"),
    ("params = { epochs = 5 }", "params = { epochz = 5 }", "models.mf.params.epochz", "epochz", "no parameter 'epochz'"),
    ("log = true } }", "log = true }, bogus = [1] }", "models.mf.search.bogus", "bogus", "no parameter 'bogus'"),
    ("low = 0.001, high = 0.01", "low = 0.1, high = 0.01", "models.mf.search.lr", "low = 0.1", "must be below high"),
    ("low = 0.001, high = 0.01, log = true", "low = 0.0, high = 0.01, log = true", "models.mf.search.lr", "low = 0.0",
     "log range needs low > 0"),
    ("search.factors = [8, 16]", "search.factors = []", "models.implicit-als.search.factors", "search.factors = []",
     "empty list"),
    ("search.factors = [8, 16]", "search.factors = [8]\nsolver = 3", "models.implicit-als.solver", "solver = 3",
     "unknown key"),
    ('[models."implicit-als"]', '[models.nomodel]', "models.nomodel", "[models.nomodel]", "unknown model 'nomodel'"),
    ("params = { epochs = 5 }", "params = { epochs = 5, factors = 4 }", "models.mf.search.factors", "search = {",
     "both fixed in params and searched"),
])
def test_errors_name_the_key_and_its_line(tmp_path, old, new, key, needle, msg):
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    m = _err(text, tmp_path)
    line = _line_of(text, needle)
    assert re.match(rf".*exp\.toml:{line}: {re.escape(key)}: ", m), m
    assert msg in m


def test_unknown_section_and_missing_parts(tmp_path):
    m = _err(GOOD + "\n[extra]\nx = 1\n", tmp_path)
    assert f"exp.toml:{_line_of(GOOD + chr(10) + '[extra]', '[extra]')}: extra: unknown section" in m
    no_models = GOOD.split("[models.mf]")[0]
    assert "models: no models" in _err(no_models, tmp_path)
    both = GOOD.replace('dataset = "movielens-100k"', 'dataset = "movielens-100k"\nfile = "x.csv"')
    m = _err(both, tmp_path)
    assert f"exp.toml:{_line_of(both, '[data]')}: data: give exactly one of" in m
    missing = GOOD.replace('dataset = "movielens-100k"', 'file = "nowhere.csv"')
    m = _err(missing, tmp_path)
    assert f"exp.toml:{_line_of(missing, 'nowhere')}: data.file: file not found" in m


def test_toml_syntax_errors_keep_tomllibs_line(tmp_path):
    m = _err(GOOD.replace("trials = 4", "trials = = 4"), tmp_path)
    assert "invalid TOML" in m and "line 19" in m


def test_key_line_scans_tables_dotted_keys_and_inline_tables():
    text = GOOD
    assert key_line(text, ("split", "test_size")) == _line_of(text, "test_size")
    assert key_line(text, ("models", "mf", "search", "lr", "low")) == _line_of(text, "search = {")
    assert key_line(text, ("models", "implicit-als", "search", "factors")) == _line_of(text, "search.factors")
    assert key_line(text, ("models", "implicit-als")) == _line_of(text, '[models."implicit-als"]')
    assert key_line(text, ("nothing",)) is None
    # a key of the same name in another table is not taken
    assert key_line(text, ("tuning", "method")) == _line_of(text, 'method = "grid"')


def test_vocabulary_names_resolve_for_every_model():
    # the library's names (factors, epochs, lr, reg) are every model's constructor names
    from tastebud.models import registry

    for name, new in [("mf", {"factors": 4, "epochs": 2, "lr": 0.01, "reg": 0.02}),
                      ("bpr", {"factors": 4, "epochs": 2, "lr": 0.01, "reg": 0.02}),
                      ("implicit-als", {"factors": 4, "epochs": 2, "reg": 0.1}),
                      ("fm", {"factors": 4, "epochs": 2}), ("ease", {"reg": 100.0})]:
        cls = registry.get(name)
        kw = resolve_params(name, cls, new)
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)  # never a deprecated name
            model = cls(**kw)
        got = model.get_params()
        # each requested value is held by the model under its current name
        assert sorted(v for v in new.values()) == sorted(got[k] for k in kw)


def test_deprecated_names_warn_with_key_and_line(tmp_path):
    text = GOOD.replace("params = { epochs = 5 }", "params = { n_epochs = 5 }")
    p = tmp_path / "exp.toml"
    p.write_text(text)
    with pytest.warns(FutureWarning, match=rf"exp\.toml:{_line_of(text, 'n_epochs')}: models\.mf\.params\.n_epochs: "
                      r"'n_epochs' is a deprecated name; use 'epochs'"):
        load_config(p)
