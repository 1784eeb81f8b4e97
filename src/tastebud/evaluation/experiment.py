"""``tastebud run experiment.toml``: one experiment from a file, repeatable and recorded.

The run, in order:

1. read the data (a registered dataset or a file) and split it: ``train_full`` / ``test`` by the
   file's ``[split]``, then ``train`` / ``valid`` by the same method *inside* ``train_full``;
2. for each model with a ``search`` space: tune on (``train``, ``valid``) only — the test split is
   not passed to the search at all — then refit the chosen hyperparameters on ``train_full``
   once per seed and evaluate on ``test`` (full ranking; sampled metrics in their own table);
3. per-user values of every metric are kept, so that every number in the tables carries a
   bootstrap interval over users and every model is compared with the best by a paired test,
   Holm-corrected (:mod:`tastebud.evaluation.stats`);
4. the output folder receives ``manifest.json`` (resolved config, versions, machine, data
   checksums, seeds, git commit, timings), the tables (markdown and CSV), per-model results and
   the tuning trials; ``--report`` adds the HTML page.

Finished models and tuning trials are kept in the output folder, keyed by everything that
determines them, so an interrupted run started again resumes (``fresh=True`` starts over).
Models come from the registry, so new models work without changes here.
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..models import registry
from .config import Experiment, ModelSpec, resolve_params
from .exp_tables import LOWER_IS_BETTER
from .tuning import _safe, fingerprint

logger = logging.getLogger("tastebud")

__all__ = ["run_experiment", "make_splits", "load_data", "ModelRun", "ExperimentResult", "tune_model"]



@dataclass
class ModelRun:
    """One model's results: chosen parameters, tuning, timings, per-user values, lists."""

    label: str
    name: str
    task: str
    params: dict[str, Any]
    fit_seconds: list[float]
    per_user: pd.DataFrame
    summary: dict[str, float]
    lists: np.ndarray | None  # (evaluated users, max k) item indices in the data's item order, -1 padding
    list_users: np.ndarray | None
    tuning: dict[str, Any] | None = None
    curves: dict[str, list[float]] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    cached: bool = False


@dataclass
class ExperimentResult:
    experiment: Experiment
    out_dir: Path
    runs: list[ModelRun]
    skipped: dict[str, str]
    manifest: dict[str, Any]
    tables: dict[str, pd.DataFrame]
    stats: pd.DataFrame
    context: dict[str, Any]


# ------------------------------------------------------------------ data and splits
def load_data(exp: Experiment) -> tuple[Any, dict[str, Any]]:
    """(Interactions, provenance of the data: source, file checksums, content checksum)."""
    from .provenance import file_sha256, interactions_sha256

    d = exp.data
    if "dataset" in d:
        from ..data import datasets

        ds = datasets.load(d["dataset"])
        inter = ds.interactions
        if inter is None:
            raise exp.error(("data", "dataset"), f"{d['dataset']} holds no user-item interactions")
        files = {}
        for f in datasets.info(d["dataset"]).get("required_files", []):
            p = Path(ds.path) / f
            if p.is_file():
                files[f] = file_sha256(p)
        has_ratings = bool(getattr(ds, "has_ratings", True))
        source = {"dataset": d["dataset"], "path": str(ds.path)}
    else:
        from ..model_io import load_dataset_file

        ds = load_dataset_file(d["file"], d["user_col"], d["item_col"], d["rating_col"], d["timestamp_col"],
                               d.get("sep"), weight=d.get("weight_col"), duplicates=d.get("duplicates"), fmt="table")
        inter = ds.interactions
        files = {Path(d["file"]).name: file_sha256(d["file"])}
        has_ratings = bool(ds.has_ratings)
        source = {"file": d["file"]}
    if d.get("implicit"):
        has_ratings = False
    info = {**source, "files_sha256": files, "content_sha256": interactions_sha256(inter),
            "users": int(inter.n_users), "items": int(inter.n_items), "interactions": int(inter.nnz),
            "has_ratings": has_ratings, "has_timestamps": inter.timestamps is not None}
    return inter, info


def _split_once(exp: Experiment, inter: Any, size: float, seed: int) -> tuple[Any, Any]:
    from .. import split

    s = exp.split
    if s["method"] == "holdout":
        return split.holdout(inter, test_size=size, per_user=s["per_user"], random_state=seed)
    if s["method"] == "temporal":
        return split.temporal(inter, test_size=size)
    return split.leave_last_out(inter, validation=False)


def make_splits(exp: Experiment, inter: Any) -> dict[str, Any]:
    """``train_full``/``test`` from the data, ``train``/``valid`` from ``train_full`` (same method;
    the validation split uses the split seed + 1)."""
    s = exp.split
    if s["method"] in ("temporal", "leave_last_out") and inter.timestamps is None:
        raise exp.error(("split", "method"), f"{s['method']} needs timestamps; the data has none")
    train_full, test = _split_once(exp, inter, s["test_size"], s["seed"])
    train, valid = _split_once(exp, train_full, s["validation_size"], s["seed"] + 1)
    if test.nnz == 0 or valid.nnz == 0:
        raise exp.error(("split",), "the split leaves an empty test or validation set")
    return {"train_full": train_full, "test": test, "train": train, "valid": valid}


def _fit_input(task: str, inter: Any, has_ratings: bool) -> Any:
    if task == "rating":
        return inter
    if task == "baskets":
        from .adapters import user_baskets

        return user_baskets(inter)
    if task == "sequence":
        from ..data import Sequences

        return Sequences.from_interactions(inter)
    return inter.binarize() if has_ratings else inter


def applies(name: str, data_info: dict[str, Any]) -> str | None:
    """Why model ``name`` cannot run on this data (None when it can)."""
    task = registry.info(name)[0]
    if task == "rating" and not data_info["has_ratings"]:
        return "needs explicit ratings; the data has none (or [data] implicit = true)"
    if task == "sequence" and not data_info["has_timestamps"]:
        return "a sequence model needs timestamps to order each user's items"
    if task in ("rating", "topn", "sequence"):
        return None
    if task == "baskets" and callable(getattr(registry.get(name), "recommend", None)):
        return None  # each user's training items as a basket (evaluation.adapters)
    return f"task {task!r} does not rank items for users of an interactions file (use `tastebud evaluate`)"


# ------------------------------------------------------------------ models
def _as_user_model(model: Any, task: str, train: Any) -> Any:
    if task == "baskets":
        from .adapters import BasketsAsUsers

        return BasketsAsUsers(model, train)
    return model


_WARM: set[str] = set()


def _warm_up(spec: ModelSpec, params: dict[str, Any], task: str, train: Any, has_ratings: bool) -> None:
    """Fit once on a few users first so that fit times exclude numba's compilation (best effort:
    a model that cannot fit the small sample is simply timed cold)."""
    if spec.name in _WARM:
        return
    _WARM.add(spec.name)
    u = train.coo()[0]
    small = train.select(u < min(60, train.n_users))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            build(spec, params, 0).fit(_fit_input(task, small, has_ratings))
    except Exception as e:  # noqa: BLE001 - any failure only means a cold timing
        logger.debug("warm-up of %s failed (%s); its fit time includes compilation", spec.label, e)


def build(spec: ModelSpec, params: dict[str, Any], seed: int | None) -> Any:
    cls = registry.get(spec.name)
    kw = resolve_params(spec.name, cls, params)
    names = cls._param_names()
    if seed is not None and "random_state" in names and "random_state" not in params:
        kw["random_state"] = seed
    if "verbose" in names and "verbose" not in params:
        kw["verbose"] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # deprecated names already translated once
        return cls(**kw)


def _metric_lists(exp: Experiment, task: str) -> tuple[list[str], list[str]]:
    """(full-ranking metrics, sampled metrics) to ask ``evaluate`` for."""
    m = exp.metrics
    full = [f"{b}@{k}" for k in m["k"] for b in [*m["ranking"], *m["beyond"]]]
    if task == "rating":
        full = list(m["rating"]) + full
    sampled = [("sampled_auc" if b == "auc" else f"sampled_{b}@{k}") for b in m["sampled"]
               for k in ([None] if b == "auc" else m["k"])]
    return full, list(dict.fromkeys(sampled))


def _tune_metric(exp: Experiment, spec: ModelSpec, task: str) -> tuple[str, str]:
    from .evaluate import parse_metric

    name = spec.tune_metric or (exp.tuning["metric_rating"] if task == "rating" else exp.tuning["metric_ranking"])
    base = parse_metric(name)[0]
    if base in ("rmse", "mae") and task != "rating":
        raise exp.error(("models", spec.label), f"cannot tune a {task} model on {name} (it predicts no ratings)")
    return name, "minimize" if base in LOWER_IS_BETTER else "maximize"


def tune_model(exp: Experiment, spec: ModelSpec, train: Any, valid: Any, has_ratings: bool,
               store: Path | None, key: Any = None) -> dict[str, Any] | None:
    """Tune ``spec`` on (``train``, ``valid``): the only data this function sees."""
    from .evaluate import evaluate
    from .tuning import tune

    if not spec.search or exp.tuning["method"] == "none":
        return None
    task = registry.info(spec.name)[0]
    metric, direction = _tune_metric(exp, spec, task)
    fit_data = _fit_input(task, train, has_ratings)
    thr = exp.metrics.get("relevance_threshold")

    def objective(params: dict[str, Any]) -> float:
        model = build(spec, {**spec.params, **params}, exp.seeds[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(fit_data)
            return evaluate(_as_user_model(model, task, train), valid, [metric], relevance_threshold=thr)[metric]

    res = tune(spec.label, spec.search, objective, direction, exp.tuning["method"], exp.tuning["trials"],
               exp.tuning["timeout"], exp.tuning["seed"], store, key={"metric": metric, "key": key})
    return {"metric": metric, "direction": direction, "best_params": res.best_params, "best_value": res.best_value,
            "trials": res.trials, "stopped_by": res.stopped_by, "seconds": res.seconds, "method": res.method,
            "resumed": res.resumed}


def _history_curves(model: Any) -> dict[str, list[float]]:
    """Per-epoch curves a model logged in ``history_`` (dict of lists, list of numbers, list of dicts)."""
    h = getattr(model, "history_", None)
    out: dict[str, list[float]] = {}
    if isinstance(h, dict):
        for k, v in h.items():
            if isinstance(v, (list, tuple)) and v and all(isinstance(x, (int, float)) for x in v):
                out[str(k)] = [float(x) for x in v]
    elif isinstance(h, (list, tuple)) and h:
        if all(isinstance(x, (int, float)) for x in h):
            out["train"] = [float(x) for x in h]
        elif all(isinstance(x, dict) for x in h):
            keys = [k for k in h[0] if k != "epoch" and all(isinstance(r.get(k), (int, float)) for r in h)]
            for k in keys:
                out[str(k)] = [float(r[k]) for r in h]
    return {k: v for k, v in out.items() if all(math.isfinite(x) for x in v)}


def _validation_curves(spec: ModelSpec, params: dict[str, Any], seed: int, task: str,
                       splits: dict[str, Any]) -> dict[str, list[float]]:
    """Train and validation curves for rating models whose ``fit`` scores a validation set every
    epoch (``fit(data, valid=...)``): one extra fit on the training part, scored on the validation
    split — never on the test split."""
    import inspect

    cls = registry.get(spec.name)
    if task != "rating" or "valid" not in inspect.signature(cls.fit).parameters:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = build(spec, params, seed).fit(splits["train"], valid=splits["valid"])
    except (TypeError, ValueError, FloatingPointError) as e:
        logger.debug("no validation curve for %s: %s", spec.label, e)
        return {}
    return {f"{k} ({'validation split' if k.startswith('valid') else 'training part'})": v
            for k, v in _history_curves(m).items()}


def _run_model(exp: Experiment, spec: ModelSpec, splits: dict[str, Any], data_info: dict[str, Any],
               store: Path, inter: Any) -> ModelRun:
    from .evaluate import evaluate

    task = registry.info(spec.name)[0]
    has_ratings = data_info["has_ratings"]
    tuning = tune_model(exp, spec, splits["train"], splits["valid"], has_ratings, store / "tuning",
                        key=data_info["content_sha256"])
    params = {**spec.params, **(tuning["best_params"] if tuning else {})}
    full, sampled = _metric_lists(exp, task)
    kmax = max(exp.metrics["k"])
    fit_data = _fit_input(task, splits["train_full"], has_ratings)
    frames, summaries, secs = [], [], []
    lists = list_users = None
    curves: dict[str, list[float]] = {}
    extras: dict[str, Any] = {}
    thr = exp.metrics.get("relevance_threshold")
    _warm_up(spec, params, task, splits["train_full"], has_ratings)
    for si, seed in enumerate(exp.seeds):
        fitted = build(spec, params, seed)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            fitted.fit(fit_data)
        secs.append(time.perf_counter() - t0)
        model = _as_user_model(fitted, task, splits["train_full"])
        if si == 0 and hasattr(fitted, "fp_"):  # a rule model: its rules for the report's scatter
            extras["rules"], extras["rules_total"] = _rules_frame(fitted, exp.report["rules_top"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # unknown test users are counted in the summary
            s, f = evaluate(model, splits["test"], full, relevance_threshold=thr, per_user=True)
            if sampled and hasattr(model, "_scores"):
                s2, f2 = evaluate(model, splits["test"], sampled, relevance_threshold=thr, per_user=True,
                                  n_negatives=exp.metrics["n_negatives"], random_state=seed)
                s.update(s2)
                f = f.join(f2.drop(columns=[c for c in f2.columns if c in f.columns]), how="outer")
        frames.append(f)
        summaries.append(s)
        if si == 0:
            curves = _validation_curves(spec, params, seed, task, splits) or _history_curves(fitted)
            users = f.index[f["n_relevant"].notna()].to_numpy() if "n_relevant" in f else None
            if users is not None and len(users):
                ids, _ = model.recommend(users, k=kmax)
                ids = np.asarray(ids, dtype=object)
                pad = pd.isna(ids)
                ids[pad] = inter.items.ids[0]
                idx = inter.items.index(ids.ravel().tolist()).reshape(ids.shape)
                idx[pad] = -1
                lists, list_users = idx, users
    per_user = frames[0] if len(frames) == 1 else pd.concat(frames).groupby(level=0, sort=False).mean()
    summary = {k: float(np.mean([s[k] for s in summaries])) for k in summaries[0]}
    return ModelRun(spec.label, spec.name, task, params, secs, per_user, summary, lists, list_users, tuning, curves,
                    extras)


def _rules_frame(model: Any, most: int) -> tuple[pd.DataFrame, int]:
    """The model's one-consequent rules (support, confidence, lift) — a seeded uniform sample of
    ``most`` of them when there are more — and how many there are."""
    conf = float(getattr(model, "min_confidence", 0.0))
    df = model.fp_.rules(metric="confidence", min_threshold=conf, single_consequent=True, top_k=None)
    df = df[["support", "confidence", "lift"]].reset_index(drop=True)
    if len(df) > most:
        df = df.iloc[np.sort(np.random.default_rng(0).choice(len(df), most, replace=False))].reset_index(drop=True)
    return df, int(model.n_rules_) if hasattr(model, "n_rules_") else len(df)


# ------------------------------------------------------------------ caching finished models
def _model_key(exp: Experiment, spec: ModelSpec, data_info: dict[str, Any]) -> str:
    from .._version import __version__

    r = exp.resolved()
    return fingerprint({"model": r["models"][spec.label], "data": data_info["content_sha256"], "split": r["split"],
                        "metrics": r["metrics"], "tuning": r["tuning"], "seeds": r["experiment"]["seeds"],
                        "version": __version__})


def _save_run(run: ModelRun, folder: Path, key: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    base = folder / _safe(run.label)
    per = run.per_user.copy()
    per.index.name = "user"
    per.reset_index().to_parquet(f"{base}.parquet", index=False)
    if run.lists is not None:
        np.save(f"{base}.lists.npy", run.lists)
    if isinstance(run.extras.get("rules"), pd.DataFrame):
        run.extras["rules"].to_parquet(f"{base}.rules.parquet", index=False)
    meta = {"key": key, "label": run.label, "name": run.name, "task": run.task, "params": run.params,
            "fit_seconds": run.fit_seconds, "summary": run.summary, "tuning": run.tuning, "curves": run.curves,
            "rules_total": run.extras.get("rules_total"),
            "list_users": None if run.list_users is None else [_plain(u) for u in run.list_users]}
    tmp = Path(f"{base}.json.tmp")
    tmp.write_text(json.dumps(meta, default=_plain, indent=1))
    tmp.replace(f"{base}.json")  # the json last: its presence marks a finished model


def _load_run(folder: Path, label: str, key: str) -> ModelRun | None:
    base = folder / _safe(label)
    try:
        meta = json.loads(Path(f"{base}.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if meta.get("key") != key:
        return None
    try:
        per = pd.read_parquet(f"{base}.parquet").set_index("user")
        lists = np.load(f"{base}.lists.npy") if Path(f"{base}.lists.npy").exists() else None
    except (OSError, ValueError, KeyError):
        return None
    per.index = pd.Index(per.index.to_numpy(), dtype=object)
    lu = None if meta["list_users"] is None else np.asarray(meta["list_users"], dtype=object)
    extras = {}
    if Path(f"{base}.rules.parquet").exists():
        extras["rules"] = pd.read_parquet(f"{base}.rules.parquet")
        extras["rules_total"] = meta.get("rules_total")
    return ModelRun(meta["label"], meta["name"], meta["task"], meta["params"], meta["fit_seconds"], per,
                    meta["summary"], lists, lu, meta["tuning"], meta["curves"], extras, cached=True)


def _plain(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    return str(x)


# ------------------------------------------------------------------ the run
def run_experiment(exp: Experiment, out_dir: str | Path, report_dir: str | Path | None = None,
                   fresh: bool = False) -> ExperimentResult:
    """Run ``exp`` (from :func:`~tastebud.evaluation.config.load_config`), writing into ``out_dir``."""
    from tqdm.auto import tqdm

    from . import exp_tables
    from .provenance import environment

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if fresh:
        for sub in ("results", "tuning"):
            for f in (out / sub).glob("*") if (out / sub).is_dir() else []:
                f.unlink()
    t_start = time.perf_counter()
    env = environment()
    inter, data_info = load_data(exp)
    splits = make_splits(exp, inter)
    runs: list[ModelRun] = []
    skipped: dict[str, str] = {}
    todo = []
    for spec in exp.models:
        why = applies(spec.name, data_info)
        if why:
            skipped[spec.label] = why
            logger.warning("model %s skipped: %s", spec.label, why)
        else:
            todo.append(spec)
    bar = tqdm(todo, desc="models", disable=None)
    for spec in bar:
        bar.set_postfix(model=spec.label)
        key = _model_key(exp, spec, data_info)
        run = _load_run(out / "results", spec.label, key)
        if run is not None:
            logger.info("%s: finished in an earlier run, results reused", spec.label)
        else:
            t0 = time.perf_counter()
            try:
                run = _run_model(exp, spec, splits, data_info, out, inter)
            except (ValueError, FloatingPointError, RuntimeError, MemoryError, NotImplementedError) as e:
                skipped[spec.label] = f"failed: {type(e).__name__}: {e}"
                logger.warning("model %s failed: %s", spec.label, e)
                continue
            logger.info("%s: done in %.1f s", spec.label, time.perf_counter() - t0)
            _save_run(run, out / "results", key)
        runs.append(run)
    if not runs:
        raise ValueError("no model could be run: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    context = _context(exp, inter, splits, data_info)
    stats = exp_tables.statistics(exp, runs, context)
    tables = exp_tables.tables(exp, runs, stats, skipped, context)
    manifest = {
        "experiment": exp.name, "config_file": str(exp.path) if exp.path else None,
        "config_sha256": fingerprint(exp.text) if exp.text else None, "config_text": exp.text,
        "resolved_config": exp.resolved(), "seeds": {"models": exp.seeds, "split": exp.split["seed"],
                                                      "validation_split": exp.split["seed"] + 1,
                                                      "tuning": exp.tuning["seed"], "bootstrap": 0},
        "data": data_info, "splits": {k: int(v.nnz) for k, v in splits.items()},
        "environment": env, "wall_seconds": time.perf_counter() - t_start,
        "models": {r.label: {"model": r.name, "task": r.task, "params": r.params, "fit_seconds": r.fit_seconds,
                             "reused_from_earlier_run": r.cached,
                             "tuning": None if r.tuning is None else {k: v for k, v in r.tuning.items() if k != "trials"}}
                   for r in runs},
        "skipped": skipped,
    }
    res = ExperimentResult(exp, out, runs, skipped, manifest, tables, stats, context)
    exp_tables.write(res)
    if report_dir is not None:
        from .html_report import write_html

        write_html(res, report_dir)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, default=_plain))
    return res


def _context(exp: Experiment, inter: Any, splits: dict[str, Any], data_info: dict[str, Any]) -> dict[str, Any]:
    """What the report needs beyond the models: popularity and activity of users and items."""
    tf = splits["train_full"]
    pop = np.bincount(tf.coo()[1], minlength=inter.n_items).astype(np.float64)
    u_act = pd.Series(tf.user_counts().astype(np.int64), index=pd.Index(inter.users.ids, dtype=object))
    test_items = splits["test"].coo()[1]
    return {"item_popularity": pop, "user_activity": u_act, "test_items": test_items, "n_items": int(inter.n_items),
            "n_train_users": int((tf.user_counts() > 0).sum()), "data": data_info,
            "split_sizes": {k: int(v.nnz) for k, v in splits.items()}}
