"""Hyperparameter search on a validation split: grid, random (no dependency) or Optuna's TPE
(the optional ``tune`` extra), with budgets in trials and seconds, a progress bar, and trials
persisted so that an interrupted search resumes where it stopped.

A search space maps parameter names to

* a list: the values to choose from (``factors = [16, 32, 64]``);
* a range table: ``{ low = 0.001, high = 0.1, log = true }`` (integers when both ends are
  integers, or ``type = "int"``; ``n`` = the number of grid points, default 3).

This module never sees data: the caller's ``objective(params) -> float`` fits on the training
part and scores on the validation part (see :mod:`tastebud.evaluation.experiment`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

logger = logging.getLogger("tastebud")

__all__ = ["check_space", "grid_points", "sample_random", "tune", "TuneResult", "fingerprint"]

_RANGE_KEYS = {"low", "high", "log", "type", "n"}


def check_space(spec: Any) -> None:
    """Raise ``ValueError`` naming what is wrong with one parameter's search space."""
    if isinstance(spec, list):
        if not spec:
            raise ValueError("an empty list of values")
        return
    if not isinstance(spec, dict):
        raise ValueError(f"must be a list of values or a range table {{ low = ..., high = ... }}, got {spec!r}")
    bad = set(spec) - _RANGE_KEYS
    if bad:
        raise ValueError(f"unknown key(s) {sorted(bad)} in a range; a range takes {sorted(_RANGE_KEYS)}")
    if "low" not in spec or "high" not in spec:
        raise ValueError("a range needs both low and high")
    lo, hi = spec["low"], spec["high"]
    for v in (lo, hi):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"low and high must be finite numbers, got {lo!r} and {hi!r}")
    if not lo < hi:
        raise ValueError(f"low ({lo!r}) must be below high ({hi!r})")
    if spec.get("log", False) and lo <= 0:
        raise ValueError(f"a log range needs low > 0, got {lo!r}")
    t = spec.get("type", "int" if isinstance(lo, int) and isinstance(hi, int) else "float")
    if t not in ("int", "float"):
        raise ValueError(f"type must be 'int' or 'float', got {t!r}")
    n = spec.get("n", 3)
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n (grid points) must be an integer >= 2, got {n!r}")


def _is_int(spec: dict) -> bool:
    return spec.get("type", "int" if isinstance(spec["low"], int) and isinstance(spec["high"], int) else "float") == "int"


def grid_points(spec: Any) -> list[Any]:
    """The values a grid search tries for one parameter."""
    if isinstance(spec, list):
        return list(spec)
    lo, hi, n = spec["low"], spec["high"], spec.get("n", 3)
    pts = np.geomspace(lo, hi, n) if spec.get("log", False) else np.linspace(lo, hi, n)
    if _is_int(spec):
        return sorted({int(round(p)) for p in pts})
    return [float(f"{p:.6g}") for p in pts]


def sample_random(space: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """One draw: uniform over lists, uniform (or log-uniform) over ranges; names in sorted order."""
    out = {}
    for name in sorted(space):
        spec = space[name]
        if isinstance(spec, list):
            out[name] = spec[int(rng.integers(len(spec)))]
            continue
        lo, hi = float(spec["low"]), float(spec["high"])
        if _is_int(spec):
            if spec.get("log", False):  # log-uniform over [lo, hi + 1), floored: each integer its share
                v = int(math.floor(math.exp(rng.uniform(math.log(lo), math.log(hi + 1)))))
                out[name] = min(max(v, int(lo)), int(hi))
            else:
                out[name] = int(rng.integers(int(lo), int(hi) + 1))
        else:
            u = rng.uniform(math.log(lo), math.log(hi)) if spec.get("log", False) else rng.uniform(lo, hi)
            out[name] = float(f"{(math.exp(u) if spec.get('log', False) else u):.6g}")
    return out


def _candidates(space: dict[str, Any], method: str, trials: int, seed: int) -> list[dict[str, Any]]:
    """The deterministic list of parameter sets a grid or random search tries, in order."""
    if not space:
        return [{}]
    if method == "grid":
        names = sorted(space)
        grid = [dict(zip(names, combo)) for combo in itertools.product(*(grid_points(space[n]) for n in names))]
        if len(grid) > trials:
            logger.warning("grid of %d points exceeds the budget of %d trials: a seeded random subset is tried",
                           len(grid), trials)
            keep = np.sort(np.random.default_rng(seed).choice(len(grid), trials, replace=False))
            grid = [grid[i] for i in keep]
        return grid
    rng = np.random.default_rng(seed)
    out, seen = [], set()
    for _ in range(trials * 20):
        if len(out) == trials:
            break
        p = sample_random(space, rng)
        key = json.dumps(p, sort_keys=True, default=str)
        if key in seen:  # a discrete space can be smaller than the budget
            continue
        seen.add(key)
        out.append(p)
    return out


def fingerprint(obj: Any) -> str:
    """A short stable hash of a JSON-able object (what a persisted search belongs to)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class TuneResult:
    best_params: dict[str, Any]
    best_value: float | None
    direction: str
    method: str
    trials: list[dict[str, Any]] = field(default_factory=list)
    stopped_by: str = "trials"  # "trials" or "timeout"
    seconds: float = 0.0
    resumed: int = 0


def _better(a: float, b: float | None, direction: str) -> bool:
    return b is None or (a < b if direction == "minimize" else a > b)


def _progress(total: int, desc: str, initial: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, initial=initial, leave=False,
                disable=os.environ.get("TQDM_DISABLE", "") not in ("", "0"))


def tune(label: str, space: dict[str, Any], objective: Callable[[dict[str, Any]], float], direction: str = "maximize",
         method: str = "random", trials: int = 10, timeout: float = 300.0, seed: int = 0,
         store: str | Path | None = None, key: Any = None) -> TuneResult:
    """Search ``space`` for the parameters that optimise ``objective`` (on validation data).

    Stops after ``trials`` trials or when ``timeout`` seconds have passed (a trial that has
    started is finished). With ``store`` (a folder) each finished trial is written at once
    (``<label>.jsonl`` for grid/random, an SQLite study ``optuna.db`` for Optuna), and a later call
    with the same ``key`` (anything JSON-able that identifies the search: space, data, metric...)
    reuses them instead of running them again. A trial whose fit fails (e.g. diverges) is recorded
    as failed and skipped."""
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    for name, spec in space.items():
        try:
            check_space(spec)
        except ValueError as e:
            raise ValueError(f"search space of {name!r}: {e}") from None
    fp = fingerprint({"label": label, "space": space, "method": method, "seed": seed, "key": key})
    t0 = time.perf_counter()
    if method == "optuna":
        res = _tune_optuna(label, space, objective, direction, trials, timeout, seed, store, fp)
    elif method in ("grid", "random"):
        res = _tune_plain(label, space, objective, direction, method, trials, timeout, seed, store, fp)
    else:
        raise ValueError(f"method must be 'grid', 'random' or 'optuna', got {method!r}")
    res.seconds = time.perf_counter() - t0
    if res.best_value is None:
        raise RuntimeError(f"tuning {label}: every trial failed ({res.trials[-1].get('error', '') if res.trials else ''})")
    return res


def _run_trial(objective: Callable, params: dict[str, Any]) -> dict[str, Any]:
    t = time.perf_counter()
    try:
        v = float(objective(dict(params)))
        if not math.isfinite(v):
            raise FloatingPointError(f"objective is {v}")
        return {"params": params, "value": v, "seconds": time.perf_counter() - t, "status": "ok"}
    except (ValueError, FloatingPointError, ArithmeticError, RuntimeError, MemoryError) as e:
        logger.warning("trial %s failed: %s: %s", params, type(e).__name__, e)
        return {"params": params, "value": None, "seconds": time.perf_counter() - t, "status": "failed",
                "error": f"{type(e).__name__}: {e}"}


def _tune_plain(label, space, objective, direction, method, trials, timeout, seed, store, fp) -> TuneResult:
    cands = _candidates(space, method, trials, seed)
    done: list[dict[str, Any]] = []
    path = None
    if store is not None:
        Path(store).mkdir(parents=True, exist_ok=True)
        path = Path(store) / f"{_safe(label)}.jsonl"
        done = _read_trials(path, fp)
    resumed = len(done)
    if path is not None and not resumed:
        path.write_text(json.dumps({"fingerprint": fp, "label": label, "method": method}) + "\n")
    res = TuneResult({}, None, direction, method, list(done), resumed=resumed)
    start = time.perf_counter()
    bar = _progress(len(cands), f"tune {label}", min(resumed, len(cands)))
    try:
        for i, params in enumerate(cands):
            if i < resumed:
                continue
            if time.perf_counter() - start >= timeout:
                res.stopped_by = "timeout"
                logger.warning("tuning %s stopped by its time budget (%.0f s) after %d of %d trials: the choice "
                               "depends on this machine's speed", label, timeout, i, len(cands))
                break
            rec = {"trial": i, **_run_trial(objective, params)}
            res.trials.append(rec)
            if path is not None:
                with open(path, "a") as f:
                    f.write(json.dumps(rec, default=_json_default) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
            bar.update(1)
            _set_best(res)
            if res.best_value is not None:
                bar.set_postfix(best=f"{res.best_value:.4f}")
    finally:
        bar.close()
    _set_best(res)
    return res


def _set_best(res: TuneResult) -> None:
    for t in res.trials:
        if t.get("status") == "ok" and _better(t["value"], res.best_value, res.direction):
            res.best_value, res.best_params = t["value"], dict(t["params"])


def _read_trials(path: Path, fp: str) -> list[dict[str, Any]]:
    """Finished trials of an earlier run of the same search (an interrupted last line is dropped)."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    try:
        head = json.loads(lines[0]) if lines else {}
    except json.JSONDecodeError:
        head = {}
    if head.get("fingerprint") != fp:
        if lines:
            logger.info("tuning store %s belongs to another search; starting afresh", path)
        return []
    out = []
    for ln in lines[1:]:
        try:
            out.append(json.loads(ln))
        except json.JSONDecodeError:  # a line cut by an interruption
            break
    if out:
        logger.info("resuming %s: %d finished trial(s) reused", path.name, len(out))
        path.write_text("\n".join([lines[0], *(json.dumps(t) for t in out)]) + "\n")
    return out


def _json_default(x: Any) -> Any:
    return x.item() if hasattr(x, "item") else str(x)


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


def _tune_optuna(label, space, objective, direction, trials, timeout, seed, store, fp) -> TuneResult:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = None
    if store is not None:
        Path(store).mkdir(parents=True, exist_ok=True)
        storage = f"sqlite:///{Path(store).resolve() / 'optuna.db'}"
    study = optuna.create_study(study_name=f"{label}-{fp}", storage=storage, direction=direction,
                                sampler=optuna.samplers.TPESampler(seed=seed), load_if_exists=True)
    # COMPLETE, or PRUNED (our failed fits); FAIL is a trial cut by an interruption: run it again
    finished = [t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    resumed = len(finished)
    if resumed:
        logger.info("resuming Optuna study %s: %d finished trial(s) reused", study.study_name, resumed)
    choices = {n: s for n, s in space.items() if isinstance(s, list)}

    def suggest(trial: Any) -> dict[str, Any]:
        p = {}
        for name in sorted(space):
            s = space[name]
            if isinstance(s, list):  # optuna takes only primitive choices: choose an index
                prim = all(v is None or isinstance(v, (bool, int, float, str)) for v in s)
                p[name] = trial.suggest_categorical(name, s) if prim else s[trial.suggest_categorical(name, list(range(len(s))))]
            elif _is_int(s):
                p[name] = trial.suggest_int(name, int(s["low"]), int(s["high"]), log=bool(s.get("log", False)))
            else:
                p[name] = trial.suggest_float(name, float(s["low"]), float(s["high"]), log=bool(s.get("log", False)))
        return p

    records: list[dict[str, Any]] = []

    def obj(trial: Any) -> float:
        params = suggest(trial)
        rec = _run_trial(objective, params)
        records.append({"trial": trial.number, **rec})
        if rec["status"] != "ok":
            raise optuna.TrialPruned(rec.get("error", "failed"))
        return rec["value"]

    left = max(0, trials - resumed)
    bar = _progress(trials, f"tune {label}", min(resumed, trials))
    t0 = time.perf_counter()
    try:
        if left:
            study.optimize(obj, n_trials=left, timeout=timeout, catch=(),
                           callbacks=[lambda s, t: bar.update(1)])
    finally:
        bar.close()
    ran = len(records)
    res = TuneResult({}, None, direction, "optuna", resumed=resumed)
    res.stopped_by = "timeout" if ran < left and time.perf_counter() - t0 >= timeout else "trials"
    for t in study.trials:
        if t.state == optuna.trial.TrialState.COMPLETE:
            params = {n: (choices[n][v] if n in choices and not all(
                x is None or isinstance(x, (bool, int, float, str)) for x in choices[n]) else v)
                for n, v in t.params.items()}
            res.trials.append({"trial": t.number, "params": params, "value": float(t.value), "status": "ok",
                               "seconds": (t.duration.total_seconds() if t.duration else None)})
        elif t.state == optuna.trial.TrialState.PRUNED:
            res.trials.append({"trial": t.number, "params": dict(t.params), "value": None, "status": "failed"})
    _set_best(res)
    return res
