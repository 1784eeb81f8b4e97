"""Experiment files (TOML): reading, validation with file and line in every error, defaults.

An experiment file (see docs/experiments.md and examples/)::

    [experiment]
    name = "ml100k"                  # default: the file's stem
    seeds = [0]                      # each model is fitted once per seed (random_state)

    [data]
    dataset = "movielens-100k"       # or: file = "ratings.csv" (relative to this file) + column keys

    [split]
    method = "holdout"               # holdout | temporal | leave_last_out
    test_size = 0.2
    validation_size = 0.2            # carved from training, for tuning only

    [metrics]
    k = [5, 10, 20]
    ranking = ["ndcg", "recall", "precision"]
    beyond = ["novelty", "coverage", "gini"]
    rating = ["rmse", "mae"]

    [tuning]
    method = "random"                # grid | random | optuna | none
    trials = 8
    timeout = 120                    # seconds per model

    [models.mf]                      # a label; the registry name defaults to the label
    params = { epochs = 20 }
    search = { factors = [16, 32, 64], lr = { low = 0.002, high = 0.02, log = true } }

``tomllib`` reports syntax errors with a line; for the errors found here (a wrong key, type or
value) the key's line is found by scanning the file's text for its table and key.
"""

from __future__ import annotations

import copy
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import TastebudError

__all__ = ["ConfigError", "Experiment", "load_config", "parse_config", "key_line", "resolve_params"]


class ConfigError(TastebudError, ValueError):
    """An experiment file that cannot be run; the message names the file, line and key."""


# ------------------------------------------------------------------ finding a key's line
_HEADER = re.compile(r"^\s*\[\[?\s*(.+?)\s*\]\]?\s*(?:#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'))*)\s*=""")
_PART = re.compile(r"""[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'""")


def _dotted(s: str) -> tuple[str, ...]:
    return tuple(p.strip("\"'") for p in _PART.findall(s))


def key_line(text: str, path: tuple[str, ...]) -> int | None:
    """The 1-based line that defines ``path`` (e.g. ``("models", "mf", "search", "lr")``): the line of
    the key itself, else of the closest enclosing key or table (an inline table's line)."""
    best, best_len = None, 0
    table: tuple[str, ...] = ()
    in_multiline = False
    for n, line in enumerate(text.splitlines(), 1):
        if in_multiline:  # inside a multi-line string: no keys here
            if line.count('"""') % 2 == 1 or line.count("'''") % 2 == 1:
                in_multiline = False
            continue
        h = _HEADER.match(line)
        if h and not line.lstrip().startswith("#"):
            table = _dotted(h.group(1))
            full = table
        else:
            k = _KEY.match(line)
            if not k:
                continue
            full = table + _dotted(k.group(1))
            if line.count('"""') % 2 == 1 or line.count("'''") % 2 == 1:
                in_multiline = True
        m = len(full)
        if m <= len(path) and path[:m] == full and m > best_len:
            best, best_len = n, m
            if m == len(path):
                break
    if best is None:
        return None
    # an inline table on the found line may hold the rest of the path: good enough, same line
    return best


# ------------------------------------------------------------------ the validated experiment
@dataclass
class ModelSpec:
    label: str
    name: str  # registry name
    params: dict[str, Any] = field(default_factory=dict)
    search: dict[str, Any] = field(default_factory=dict)
    tune_metric: str | None = None


@dataclass
class Experiment:
    """A validated experiment: every section with its defaults filled in (``resolved()`` is what
    the run records)."""

    path: Path | None
    text: str
    name: str
    seeds: list[int]
    data: dict[str, Any]
    split: dict[str, Any]
    metrics: dict[str, Any]
    tuning: dict[str, Any]
    report: dict[str, Any]
    models: list[ModelSpec]

    def resolved(self) -> dict[str, Any]:
        return {
            "experiment": {"name": self.name, "seeds": list(self.seeds)},
            "data": copy.deepcopy(self.data), "split": copy.deepcopy(self.split),
            "metrics": copy.deepcopy(self.metrics), "tuning": copy.deepcopy(self.tuning),
            "report": copy.deepcopy(self.report),
            "models": {m.label: {"model": m.name, "params": copy.deepcopy(m.params), "search": copy.deepcopy(m.search),
                                 **({"tune_metric": m.tune_metric} if m.tune_metric else {})} for m in self.models},
        }

    def error(self, path: tuple[str, ...], msg: str) -> ConfigError:
        return _error(self.path, self.text, path, msg)


def _error(file: Path | None, text: str, path: tuple[str, ...], msg: str) -> ConfigError:
    line = key_line(text, path)
    where = f"{file or '<experiment>'}" + (f":{line}" if line else "")
    key = ".".join(path)
    return ConfigError(f"{where}: {key}: {msg}")


_SECTIONS = {
    "experiment": {"name": str, "seeds": list, "description": str},
    "data": {"dataset": str, "file": str, "user_col": str, "item_col": str, "rating_col": str, "timestamp_col": str,
             "weight_col": str, "sep": str, "duplicates": str, "implicit": bool, "min_interactions": int},
    "split": {"method": str, "test_size": float, "validation_size": float, "per_user": bool, "seed": int},
    "metrics": {"k": list, "ranking": list, "beyond": list, "rating": list, "sampled": list, "n_negatives": int,
                "relevance_threshold": float, "primary": str, "bootstrap": int, "level": float, "alpha": float,
                "test": str, "activity_buckets": list},
    "tuning": {"method": str, "trials": int, "timeout": float, "metric_rating": str, "metric_ranking": str,
               "seed": int},
    "report": {"rules_top": int},
    "models": dict,
}
_MODEL_KEYS = {"model": str, "params": dict, "search": dict, "tune_metric": str}

DEFAULTS: dict[str, dict[str, Any]] = {
    "data": {"user_col": "user", "item_col": "item", "rating_col": "rating", "timestamp_col": "timestamp",
             "implicit": False, "min_interactions": 0},
    "split": {"method": "holdout", "test_size": 0.2, "validation_size": 0.2, "per_user": True, "seed": 0},
    "metrics": {"k": [10], "ranking": ["ndcg", "recall", "precision", "map", "mrr", "hit_rate"],
                "beyond": ["novelty", "diversity", "serendipity", "coverage", "gini", "popularity", "popularity_lift"],
                "rating": ["rmse", "mae"], "sampled": [], "n_negatives": 100, "bootstrap": 1000, "level": 0.95,
                "alpha": 0.05, "test": "bootstrap", "activity_buckets": [5, 20, 50, 150]},
    "tuning": {"method": "random", "trials": 10, "timeout": 300.0, "seed": 0},
    "report": {"rules_top": 2000},
}
_CHOICES = {
    ("split", "method"): ("holdout", "temporal", "leave_last_out"),
    ("metrics", "test"): ("bootstrap", "wilcoxon"),
    ("tuning", "method"): ("grid", "random", "optuna", "none"),
    ("data", "duplicates"): ("sum", "mean", "max", "first", "last", "raise"),
}
_RANKING_BASES = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")
_BEYOND_BASES = ("novelty", "diversity", "serendipity", "coverage", "gini", "popularity", "popularity_lift")
_SAMPLED_BASES = ("ndcg", "hit_rate", "mrr", "auc")


def load_config(path: str | Path) -> Experiment:
    """Read and validate an experiment file (errors: :class:`ConfigError` with file and line)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    return parse_config(text, p)


def parse_config(text: str, path: Path | None = None) -> Experiment:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:  # its message already says "(at line L, column C)"
        raise ConfigError(f"{path or '<experiment>'}: invalid TOML: {e}") from None
    err = lambda keys, msg: _error(path, text, keys, msg)  # noqa: E731

    for sec, val in raw.items():
        if sec not in _SECTIONS:
            raise err((sec,), f"unknown section; sections are {', '.join(_SECTIONS)}")
        if not isinstance(val, dict):
            raise err((sec,), "must be a table ([" + sec + "])")
    out: dict[str, dict[str, Any]] = {}
    for sec, allowed in _SECTIONS.items():
        if sec == "models":
            continue
        got = raw.get(sec, {})
        for key, val in got.items():
            if key not in allowed:
                raise err((sec, key), f"unknown key; [{sec}] takes {', '.join(allowed)}")
            want = allowed[key]
            ok = isinstance(val, want) and not (want in (int, float) and isinstance(val, bool))
            if want is float and isinstance(val, int) and not isinstance(val, bool):
                ok, val = True, float(val)
            if not ok:
                raise err((sec, key), f"must be {_type_name(want)}, got {type(val).__name__} {val!r}")
            if (sec, key) in _CHOICES and val not in _CHOICES[(sec, key)]:
                raise err((sec, key), f"must be one of {', '.join(_CHOICES[(sec, key)])}, got {val!r}")
        merged = copy.deepcopy(DEFAULTS.get(sec, {}))
        merged.update({k: (float(v) if allowed[k] is float else v) for k, v in got.items()})
        out[sec] = merged

    exp = out["experiment"]
    name = exp.get("name") or (path.stem if path else "experiment")
    seeds = exp.get("seeds", [0])
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise err(("experiment", "seeds"), f"must be a non-empty list of non-negative integers, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise err(("experiment", "seeds"), f"holds a seed twice: {seeds!r}")

    _check_data(out["data"], path, err)
    _check_split(out["split"], err)
    _check_metrics(out["metrics"], err)
    _check_tuning(out["tuning"], out["metrics"], err)
    models = _check_models(raw.get("models"), err)
    return Experiment(path, text, name, list(seeds), out["data"], out["split"], out["metrics"], out["tuning"],
                      out["report"], models)


def _type_name(t: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "an array",
            dict: "a table"}[t]


def _check_data(d: dict[str, Any], path: Path | None, err: Any) -> None:
    if ("dataset" in d) == ("file" in d):
        raise err(("data",), "give exactly one of dataset = NAME or file = PATH")
    if "dataset" in d:
        from ..data import datasets

        if d["dataset"] not in datasets.names():
            raise err(("data", "dataset"), f"unknown dataset {d['dataset']!r}; registered: {', '.join(datasets.names())}")
    else:
        f = Path(d["file"])
        if not f.is_absolute() and path is not None:
            f = path.parent / f
        if not f.is_file():
            raise err(("data", "file"), f"file not found: {f}")
        d["file"] = str(f.resolve())
    if d["min_interactions"] < 0:
        raise err(("data", "min_interactions"), "must be >= 0")


def _check_split(s: dict[str, Any], err: Any) -> None:
    for key in ("test_size", "validation_size"):
        if not 0 < s[key] < 1:
            raise err(("split", key), f"must be a fraction strictly between 0 and 1, got {s[key]!r}")
    if s["seed"] < 0:
        raise err(("split", "seed"), "must be >= 0")


def _check_metrics(m: dict[str, Any], err: Any) -> None:
    ks = m["k"]
    if not ks or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in ks):
        raise err(("metrics", "k"), f"must be a non-empty list of positive integers, got {ks!r}")
    m["k"] = sorted(set(ks))
    for key, known in (("ranking", _RANKING_BASES), ("beyond", _BEYOND_BASES), ("rating", ("rmse", "mae")),
                       ("sampled", _SAMPLED_BASES)):
        for v in m[key]:
            if not isinstance(v, str) or v not in known:
                raise err(("metrics", key), f"unknown metric {v!r}; [metrics] {key} takes {', '.join(known)} "
                          "(the cut-offs come from k)")
    if m["n_negatives"] < 1:
        raise err(("metrics", "n_negatives"), "must be >= 1")
    if m["bootstrap"] < 100:
        raise err(("metrics", "bootstrap"), f"must be at least 100 resamples, got {m['bootstrap']}")
    for key in ("level", "alpha"):
        if not 0 < m[key] < 1:
            raise err(("metrics", key), f"must be strictly between 0 and 1, got {m[key]!r}")
    b = m["activity_buckets"]
    if not all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in b) or b != sorted(set(b)):
        raise err(("metrics", "activity_buckets"), f"must be increasing positive integers (bucket edges), got {b!r}")
    if "primary" not in m:
        m["primary"] = (f"{m['ranking'][0]}@{m['k'][len(m['k']) // 2]}" if m["ranking"]
                        else m["rating"][0] if m["rating"] else "")
    if not m["ranking"] and not m["rating"]:
        raise err(("metrics",), "asks for no accuracy metric: give ranking = [...] or rating = [...]")
    _check_metric_name(m["primary"], ("metrics", "primary"), err)


def _check_metric_name(name: str, where: tuple[str, ...], err: Any) -> None:
    from .evaluate import parse_metric

    try:
        parse_metric(name)
    except ValueError as e:
        raise err(where, str(e)) from None


def _check_tuning(t: dict[str, Any], metrics: dict[str, Any], err: Any) -> None:
    if t["trials"] < 1:
        raise err(("tuning", "trials"), "must be >= 1")
    if t["timeout"] <= 0:
        raise err(("tuning", "timeout"), "must be a positive number of seconds")
    t.setdefault("metric_rating", metrics["rating"][0] if metrics["rating"] else "rmse")
    t.setdefault("metric_ranking", metrics["primary"] if "@" in metrics["primary"] else "ndcg@10")
    for key in ("metric_rating", "metric_ranking"):
        _check_metric_name(t[key], ("tuning", key), err)
    if t["method"] == "optuna":
        try:
            import optuna  # noqa: F401
        except ImportError:
            raise err(("tuning", "method"), "optuna is not installed (pip install 'tastebud[tune]'), "
                      "or use method = \"random\" or \"grid\"") from None


def _check_models(models: Any, err: Any) -> list[ModelSpec]:
    from ..models import registry

    if not models:
        raise err(("models",), "no models: add a table [models.NAME] per model (NAME a registered model)")
    specs = []
    for label, body in models.items():
        where = ("models", label)
        if not isinstance(body, dict):
            raise err(where, "must be a table")
        for key, val in body.items():
            if key not in _MODEL_KEYS:
                raise err(where + (key,), f"unknown key; a model takes {', '.join(_MODEL_KEYS)} "
                          "(hyperparameters go in params = {...} or search = {...})")
            if not isinstance(val, _MODEL_KEYS[key]):
                raise err(where + (key,), f"must be {_type_name(_MODEL_KEYS[key])}")
        name = body.get("model", label)
        try:
            task, _ = registry.info(name)
        except KeyError:
            raise err(where + (("model",) if "model" in body else ()),
                      f"unknown model {name!r}; registered: {', '.join(registry.names())}") from None
        if not registry.available(name):
            raise err(where, f"model {name!r} is not installed (its optional extra is missing; see `tastebud models`)")
        cls = registry.get(name)
        params, search = dict(body.get("params", {})), dict(body.get("search", {}))
        renamed = getattr(cls, "renamed_params", {}) or {}
        for key, sub in (("params", params), ("search", search)):
            for p in sub:
                if resolve_params(name, cls, {p: None}, check=False) is None:
                    raise err(where + (key, p), f"{cls.__name__} has no parameter {p!r}; parameters: "
                              f"{', '.join(cls._param_names())}")
                if p in renamed:
                    import warnings

                    warnings.warn(str(err(where + (key, p), f"{p!r} is a deprecated name; use {renamed[p]!r}")),
                                  FutureWarning, stacklevel=2)
        for p in set(params) & set(search):
            raise err(where + ("search", p), "is both fixed in params and searched in search")
        from .tuning import check_space

        for p, spec in search.items():
            try:
                check_space(spec)
            except ValueError as e:
                raise err(where + ("search", p), str(e)) from None
        tm = body.get("tune_metric")
        if tm is not None:
            _check_metric_name(tm, where + ("tune_metric",), err)
        specs.append(ModelSpec(label, name, params, search, tm))
    return specs


# ------------------------------------------------------------------ hyperparameter names
def resolve_params(name: str, cls: type, params: dict[str, Any], check: bool = True) -> dict[str, Any] | None:
    """``params`` as ``cls``'s constructor takes them: the library's vocabulary (``factors``,
    ``epochs``, ``lr``, ``reg``, ...) or a deprecated name the class still translates
    (``renamed_params``). Returns None (or raises ``ValueError`` with ``check``) when a name is not
    a parameter of the model."""
    valid = set(cls._param_names())
    renamed = getattr(cls, "renamed_params", {}) or {}
    bad = [k for k in params if k not in valid and k not in renamed]
    if bad:
        if check:
            raise ValueError(f"{cls.__name__} has no parameter {bad[0]!r}")
        return None
    return dict(params)
