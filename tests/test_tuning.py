"""Searches: deterministic candidates, budgets in trials and seconds, failed trials, and an
interrupted search that resumes from its persisted trials (JSONL, and Optuna's SQLite study)."""

import json
import time

import numpy as np
import pytest

from tastebud.evaluation.tuning import _candidates, check_space, grid_points, sample_random, tune

SPACE = {"factors": [4, 8, 16], "lr": {"low": 0.001, "high": 0.1, "log": True}, "k": {"low": 1, "high": 20}}


def _objective(calls):
    def f(p):
        calls.append(dict(p))
        # a smooth optimum at factors=8, lr=0.01, k=10
        return -((np.log10(p["lr"]) + 2) ** 2) - abs(p["factors"] - 8) / 8 - abs(p["k"] - 10) / 10
    return f


def test_spaces_and_grid_points():
    assert grid_points([1, 2]) == [1, 2]
    assert grid_points({"low": 1, "high": 100, "log": True, "n": 3}) == [1, 10, 100]
    assert grid_points({"low": 0.0, "high": 1.0, "n": 5}) == [0.0, 0.25, 0.5, 0.75, 1.0]
    rng = np.random.default_rng(0)
    draws = [sample_random(SPACE, rng) for _ in range(300)]
    assert all(1 <= d["k"] <= 20 and isinstance(d["k"], int) for d in draws)
    assert {d["k"] for d in draws} == set(range(1, 21))
    lr = np.log10([d["lr"] for d in draws])
    assert lr.min() >= -3 and lr.max() <= -1 and abs(np.median(lr) + 2) < 0.25  # log-uniform
    with pytest.raises(ValueError, match="below high"):
        check_space({"low": 2, "high": 1})


@pytest.mark.parametrize("method", ["grid", "random"])
def test_candidates_are_deterministic_and_within_budget(method):
    a = _candidates(SPACE, method, 7, seed=3)
    b = _candidates(SPACE, method, 7, seed=3)
    assert a == b and len(a) == 7
    assert len({json.dumps(x, sort_keys=True) for x in a}) == 7  # no repeats


@pytest.mark.parametrize("method", ["grid", "random"])
def test_search_finds_the_best_and_resumes_after_interruption(tmp_path, method):
    calls: list = []
    full = tune("m", SPACE, _objective(calls), "maximize", method, trials=8, timeout=60, seed=1, store=tmp_path / "a")
    assert len(calls) == 8 and len(full.trials) == 8
    best = max(full.trials, key=lambda t: t["value"])
    assert full.best_params == best["params"] and full.best_value == best["value"]

    # the same search interrupted after 3 trials (Ctrl-C inside the 4th), then started again
    calls2: list = []
    obj = _objective(calls2)

    def interrupted(p):
        if len(calls2) == 3:
            raise KeyboardInterrupt
        return obj(p)

    store = tmp_path / "b"
    with pytest.raises(KeyboardInterrupt):
        tune("m", SPACE, interrupted, "maximize", method, trials=8, timeout=60, seed=1, store=store)
    lines = (store / "m.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 3  # header + the three finished trials, each written at once
    resumed_calls: list = []
    res = tune("m", SPACE, _objective(resumed_calls), "maximize", method, trials=8, timeout=60, seed=1, store=store)
    assert res.resumed == 3 and len(resumed_calls) == 5  # only the missing trials ran
    assert [t["params"] for t in res.trials] == [t["params"] for t in full.trials]
    assert res.best_params == full.best_params
    # a different search (other seed) in the same store starts afresh
    other: list = []
    tune("m", SPACE, _objective(other), "maximize", method, trials=2, timeout=60, seed=2, store=store)
    assert len(other) == 2


def test_time_budget_and_failed_trials():
    def slow(p):
        time.sleep(0.3)
        if p["factors"] == 4:
            raise FloatingPointError("diverged")
        return float(p["factors"])

    res = tune("s", {"factors": [4, 8, 16, 32, 64, 128]}, slow, "maximize", "grid", trials=6, timeout=0.5)
    assert res.stopped_by == "timeout" and 1 <= len(res.trials) < 6
    failed = [t for t in res.trials if t["status"] == "failed"]
    assert all("diverged" in t["error"] for t in failed)
    with pytest.raises(RuntimeError, match="every trial failed"):
        tune("s", {"factors": [4]}, slow, "maximize", "grid", trials=1, timeout=10)


def test_minimize():
    res = tune("r", {"x": [3, 1, 2]}, lambda p: float(p["x"]), "minimize", "grid", trials=3, timeout=10)
    assert res.best_params == {"x": 1}


def test_optuna_search_persists_and_resumes(tmp_path):
    pytest.importorskip("optuna")
    calls: list = []
    obj = _objective(calls)

    def interrupted(p):
        if len(calls) == 4:
            raise KeyboardInterrupt
        return obj(p)

    with pytest.raises(KeyboardInterrupt):
        tune("o", SPACE, interrupted, "maximize", "optuna", trials=10, timeout=60, seed=0, store=tmp_path)
    assert (tmp_path / "optuna.db").exists()
    more: list = []
    res = tune("o", SPACE, _objective(more), "maximize", "optuna", trials=10, timeout=60, seed=0, store=tmp_path)
    assert res.resumed == 4 and len(more) == 6
    ok = [t for t in res.trials if t["status"] == "ok"]
    assert len(ok) == 10 and res.best_value == max(t["value"] for t in ok)
    assert set(res.best_params) == set(SPACE)
