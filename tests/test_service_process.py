"""The service as a real process (``tastebud serve`` under uvicorn): nothing acknowledged is lost
after ``kill -9``, SIGTERM stops it within seconds even mid-request, a client that hangs up has
its work abandoned, a new version swaps in under load without a failed request, and
``tastebud retrain`` builds the next version from the data plus the event log."""

import os
import re
import signal
import threading
import time

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

import tastebud as tb  # noqa: E402
from serving_helpers import Server, interactions  # noqa: E402


@pytest.fixture(scope="module")
def root(served_root):
    return served_root


def _post_events(url: str, worker: int, n: int, acked: list, stop: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=10) as c:
        for j in range(n):
            if stop.is_set():
                return
            ev = {"user": f"w{worker}", "item": (worker * 7 + j) % 60, "weight": 1 + j % 3, "timestamp": j}
            try:
                r = c.post("/events", json=ev)
            except httpx.HTTPError:
                return  # the server died under us: this event was never acknowledged
            if r.status_code == 200:
                acked.append((ev["user"], ev["item"], r.json()["ids"][0]))


def test_nothing_acknowledged_is_lost_after_kill_9(root, tmp_path):
    log = tmp_path / "server.log"
    srv = Server(root / "models", "--events", str(tmp_path / "ev.db"), log=log).wait_ready()
    acked: list = []
    stop = threading.Event()
    threads = [threading.Thread(target=_post_events, args=(srv.url, w, 400, acked, stop)) for w in range(4)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    while len(acked) < 100 and time.monotonic() - t0 < 60:
        time.sleep(0.01)
    srv.kill9()  # mid-stream: requests are in flight
    stop.set()
    for t in threads:
        t.join(20)
    assert len(acked) >= 100
    srv2 = Server(root / "models", "--events", str(tmp_path / "ev.db"), log=log).wait_ready()
    try:
        stored = {}
        for w in range(4):
            r = httpx.get(f"{srv2.url}/events/w{w}").json()
            stored[f"w{w}"] = [e["item"] for e in r["events"]]
        by_user: dict = {}
        for u, item, rid in sorted(acked, key=lambda x: x[2]):
            by_user.setdefault(u, []).append(item)
        for u, items in by_user.items():  # every acknowledged event is there, in order
            got = stored[u]
            it = iter(got)
            assert all(any(x == y for y in it) for x in items), u
        assert sum(len(v) for v in stored.values()) >= len(acked)
        # and the restarted service serves them: a logged user is recommended from the log
        r = httpx.get(f"{srv2.url}/recommend/w0", params={"k": 5}).json()
        assert r["source"] == "history" and r["events"] == len(stored["w0"])
        assert not set(r["items"]) & set(stored["w0"])
    finally:
        srv2.stop()


def test_sigterm_stops_within_seconds_even_mid_request(tmp_path):
    # 1000 users with explanations (a fold-in and a decomposition each) take seconds
    rng = np.random.default_rng(0)
    n_items = 50_000
    df = __import__("pandas").DataFrame({"user": rng.integers(0, 1200, 30_000), "item": rng.integers(0, n_items, 30_000)})
    inter = tb.Interactions.from_frame(df, duplicates="sum")
    models = tmp_path / "m"
    models.mkdir()
    tb.ImplicitALS(factors=16, epochs=1, random_state=0, num_threads=1).fit(inter).save(models / "big.tb")
    users = inter.users.ids[:1000].tolist()
    log = tmp_path / "log"
    srv = Server(models, "--no-events", log=log).wait_ready()
    # 1. a client that hangs up: its work is abandoned (counted), the server stays responsive
    try:
        httpx.post(f"{srv.url}/recommend", json={"users": users, "k": 10, "explain": True}, timeout=1.0)
    except httpx.TimeoutException:
        pass
    t0 = time.monotonic()
    abandoned = 0.0
    while time.monotonic() - t0 < 20:
        text = httpx.get(f"{srv.url}/metrics").text
        abandoned = float(re.search(r"^tastebud_requests_abandoned_total (\S+)$", text, re.M).group(1))
        if abandoned >= 1:
            break
        time.sleep(0.1)
    assert abandoned >= 1, "the hung-up request was not abandoned"
    # 2. SIGTERM with a long request in flight
    box: dict = {}

    def slow():
        try:
            box["r"] = httpx.post(f"{srv.url}/recommend", json={"users": users, "k": 10, "explain": True}, timeout=30)
        except httpx.HTTPError as e:
            box["e"] = e

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    rc = srv.proc.wait(15)
    took = time.monotonic() - t0
    t.join(15)
    assert took < 6.0, f"SIGTERM took {took:.1f}s"
    assert rc in (0, -signal.SIGTERM), srv.log()  # uvicorn re-raises the signal after a clean shutdown
    assert "Application shutdown complete" in srv.log() and "Traceback" not in srv.log()


@pytest.mark.slow
def test_hot_swap_under_load_fails_no_request(root, tmp_path):
    import shutil

    models = tmp_path / "models"
    shutil.copytree(root / "models", models)
    srv = Server(models, "--no-events", "--poll", "0.2", log=tmp_path / "log").wait_ready()
    errors: list = []
    versions: set = set()
    stop = threading.Event()
    count = [0]

    def load(u: int):
        with httpx.Client(base_url=srv.url, timeout=10) as c:
            while not stop.is_set():
                try:
                    r = c.get(f"/recommend/{u}", params={"model": "bpr", "k": 10})
                except httpx.HTTPError as e:
                    errors.append(repr(e))
                    continue
                count[0] += 1
                if r.status_code != 200:
                    errors.append(r.text)
                else:
                    versions.add(r.json()["version"])

    threads = [threading.Thread(target=load, args=(u,)) for u in range(4)]
    try:
        for t in threads:
            t.start()
        time.sleep(0.5)
        df = interactions(seed=3)
        for v in (2, 3):
            m = tb.BPR(factors=8, epochs=5, random_state=v, num_threads=1).fit(tb.Interactions.from_frame(df, rating="rating"))
            m.save(models / "bpr" / f"{v}.tb")
            t0 = time.monotonic()
            while str(v) not in versions and time.monotonic() - t0 < 20:
                time.sleep(0.05)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        srv.stop()
        for v in (2, 3):
            (models / "bpr" / f"{v}.tb").unlink(missing_ok=True)
    assert not errors, errors[:3]
    assert {"1", "2", "3"} <= versions and count[0] > 50


def test_retrain_builds_the_next_version_from_data_plus_events(root, tmp_path):
    from click.testing import CliRunner

    from tastebud.cli import main
    from tastebud.serving.events import Event, EventStore

    models = tmp_path / "models"
    import shutil

    shutil.copytree(root / "models", models)
    store = EventStore(models / "events.db")
    store.append([Event(999, 41, 2.0, 10**9), Event("999", 42, 1.0, 10**9 + 1), Event(5, 50, 1.0, 10**9),
                  Event("not-an-int", 3, 1.0, 10**9)])
    store.close()
    res = CliRunner().invoke(main, ["retrain", str(models), "--model", "als", "--data", str(root / "ratings.csv")])
    assert res.exit_code == 0, res.output
    assert "skipped 1 logged event" in res.output and "+ 3 logged events" in res.output
    m, old = tb.load(models / "als" / "1.tb"), tb.load(models / "als.tb")
    assert m.get_params() == old.get_params()
    assert set(m.users_.ids.tolist()) - set(old.users_.ids.tolist()) == {999}
    assert sorted(m.items_.ids[m.seen_[m.users_.index([999])[0]].indices].tolist()) == [41, 42]
    assert 50 in m.items_.ids[m.seen_[m.users_.index([5])[0]].indices].tolist()
    res = CliRunner().invoke(main, ["retrain", str(models), "--model", "als", "--data", str(root / "ratings.csv")])
    assert res.exit_code == 0 and (models / "als" / "2.tb").exists()
    res = CliRunner().invoke(main, ["retrain", str(models), "--model", "nope", "--data", str(root / "ratings.csv")])
    assert res.exit_code != 0 and "no model named 'nope'" in res.output


def test_cli_serve_rejects_a_missing_path():
    from click.testing import CliRunner

    from tastebud.cli import main

    res = CliRunner().invoke(main, ["serve", os.path.join("no", "such", "dir")])
    assert res.exit_code != 0
