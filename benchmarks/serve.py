"""The recommendation service under load (issue #19 targets), loopback only, bounded in time.

(a) Latency of GET /recommend/{user}?k=10 for known users over the amazon-games catalogue
    (23,715 items; ImplicitALS, 64 factors) and a synthetic 100,000-item one, at 1, 16 and 64
    concurrent connections: p50, p99, requests/s, error rate; server RSS before and after.
    Load generator: wrk (Debian package, C, epoll): on a 2-core machine a Python client would
    take most of a core from the server it measures; wrk's one thread takes far less. wrk's
    latency percentiles come from its HdrHistogram (--latency).
(b) Hot swap under load: 16 connections for 15 s while new versions of the served model are
    written into its folder every 3 s; counts failed (non-2xx / socket error) requests and the
    versions seen.
(c) Events: acknowledged events/s with synchronous=FULL (fsync per group commit) for single-event
    POSTs and for batches of 50, by threads of keep-alive httpx clients (the client must record which
    events were acknowledged, so not wrk); then a kill -9 in the middle of a load and a restart: every acknowledged event
    must be in the log.
(d) Approximate top-10 over the 100k catalogue with faiss HNSW (inner product) against exact
    scoring: recall@10 and time per query.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/serve.py [--quick] [--json PATH] [--seconds 10]

Every number is taken while other jobs may share the machine: `uptime` load is printed with each.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# ---------------------------------------------------------------------------- models
def build_models(folder: Path, quick: bool) -> dict:
    import pandas as pd

    import tastebud as tb

    info = {}
    data = os.environ.get("TASTEBUD_DATA")
    if data and (Path(data) / "amazon-games" / "sequences.txt").exists():
        seqs = tb.datasets.load("amazon-games").sequences
        rows = np.repeat(np.arange(seqs.n_users), np.diff(seqs.indptr))
        df = pd.DataFrame({"user": seqs.users.ids[rows], "item": seqs.items.ids[seqs.indices]})
        inter = tb.Interactions.from_frame(df, duplicates="sum")
        t0 = time.perf_counter()
        m = tb.ImplicitALS(factors=64, epochs=3 if quick else 5, random_state=0).fit(inter)
        m.save(folder / "games.tb")
        info["games"] = {"items": inter.n_items, "users": inter.n_users, "fit_s": time.perf_counter() - t0,
                         "users_sample": inter.users.ids[:2000].tolist()}
    rng = np.random.default_rng(0)
    n_items, n_users, nnz = 100_000, 20_000, 400_000
    df = pd.DataFrame({"user": rng.integers(0, n_users, nnz),
                       "item": (rng.pareto(1.2, nnz) * 1000).astype(np.int64) % n_items})
    df = pd.concat([df, pd.DataFrame({"user": np.zeros(n_items, np.int64), "item": np.arange(n_items)})])  # every item present
    inter = tb.Interactions.from_frame(df, duplicates="sum")
    t0 = time.perf_counter()
    m = tb.ImplicitALS(factors=64, epochs=2, random_state=0).fit(inter)
    m.save(folder / "synth100k.tb")
    info["synth100k"] = {"items": inter.n_items, "users": inter.n_users, "fit_s": time.perf_counter() - t0,
                         "users_sample": inter.users.ids[1:2001].tolist()}
    return info


# ---------------------------------------------------------------------------- server
class Server:
    def __init__(self, folder: Path, *args: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.log = tempfile.NamedTemporaryFile(prefix="serve-bench-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([sys.executable, "-m", "tastebud.cli", "-q", "serve", str(folder), "--port",
                                      str(self.port), *args], env=env, stdout=self.log, stderr=subprocess.STDOUT)
        import httpx

        t0 = time.monotonic()
        while time.monotonic() - t0 < 180:
            if self.proc.poll() is not None:
                raise RuntimeError(Path(self.log.name).read_text()[-2000:])
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError("server did not start")

    def cpu_s(self) -> float:
        import psutil

        t = psutil.Process(self.proc.pid).cpu_times()
        return t.user + t.system

    def rss_mb(self) -> float:
        import psutil

        return psutil.Process(self.proc.pid).memory_info().rss / 2**20

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)


# ---------------------------------------------------------------------------- wrk
LUA = """
local users = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/recommend/" .. users[(i %% #users) + 1] .. "?k=10&model=%s")
end
"""


def _ms(v: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)", v)
    x, u = float(m.group(1)), m.group(2)
    return x / 1000 if u == "us" else x if u == "ms" else x * 1000 if u == "s" else x * 60000


def wrk(url: str, model: str, users: list, conns: int, seconds: float, threads: int = 1) -> dict:
    lua = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    lua.write(LUA % (", ".join(json.dumps(str(u)) for u in users), model))
    lua.close()
    p = subprocess.run(["wrk", "-t", str(min(threads, conns)), "-c", str(conns), "-d", f"{int(round(seconds))}s", "--latency",
                        "--timeout", "10s", "-s", lua.name, url], capture_output=True, text=True, timeout=seconds + 60)
    out = p.stdout
    if "requests in" not in out:
        raise RuntimeError(f"wrk failed: {p.stdout}\n{p.stderr}\n(script {lua.name})")
    os.unlink(lua.name)
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    sock = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out)) if "Socket errors" in out else 0
    return {"conns": conns, "requests": total, "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": _ms(lat["50"]), "p90_ms": _ms(lat["90"]), "p99_ms": _ms(lat["99"]),
            "errors": non2xx + sock, "error_rate": (non2xx + sock) / max(total, 1), "load": load_avg()}


def latency(folder: Path, info: dict, seconds: float, quick: bool) -> list[dict]:
    srv = Server(folder, "--no-events", "--poll", "0")
    rows = []
    try:
        import httpx

        bad = httpx.get(srv.url + "/recommend/99999999999999999999999").status_code
        rows.append({"check": "id beyond int64", "status": bad})
        for model, meta in info.items():
            wrk(srv.url, model, meta["users_sample"], 4, 2)  # warm-up
            rss0 = srv.rss_mb()
            n = 0
            for conns in ((1, 16) if quick else (1, 16, 64)):
                c0 = srv.cpu_s()
                r = wrk(srv.url, model, meta["users_sample"], conns, seconds)
                r["server_cpu_ms_per_request"] = (srv.cpu_s() - c0) / max(r["requests"], 1) * 1000
                n += r["requests"]
                r.update(model=model, items=meta["items"])
                rows.append(r)
                print(f"  {model:10s} {conns:3d} conns: p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  "
                      f"{r['rps']:.0f} req/s  errors {r['errors']}  server CPU {r['server_cpu_ms_per_request']:.2f} ms/req  "
                      f"(load {r['load']})", flush=True)
            rss1 = srv.rss_mb()
            rows.append({"model": model, "rss_before_mb": rss0, "rss_after_mb": rss1, "requests": n,
                         "rss_growth": rss1 / rss0 - 1})
            print(f"  {model:10s} RSS {rss0:.0f} → {rss1:.0f} MB over {n} requests ({100 * (rss1 / rss0 - 1):+.1f}%)")
    finally:
        srv.stop()
    return rows


def hot_swap(folder: Path, info: dict, seconds: float) -> dict:
    """Serve swapdir/swap/1.tb; write 2.tb, 3.tb, ... under load."""
    import httpx

    import tastebud as tb

    d = Path(tempfile.mkdtemp(prefix="swap-"))
    (d / "swap").mkdir()
    src = folder / "games.tb" if (folder / "games.tb").exists() else folder / "synth100k.tb"
    shutil.copy(src, d / "swap" / "1.tb")
    model = tb.load(src)
    users = info["games" if "games" in info else "synth100k"]["users_sample"]
    srv = Server(d, "--no-events", "--poll", "0.5")
    swaps = []

    def writer():
        v = 2
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds - 3:
            time.sleep(3)
            model.item_factors_ = model.item_factors_ * np.float32(1.0 + 0.01 * v)  # a genuinely new version
            model.save(d / "swap" / f"{v}.tb")
            swaps.append(v)
            v += 1

    try:
        wrk(srv.url, "swap", users, 4, 2)
        t = threading.Thread(target=writer)
        t.start()
        r = wrk(srv.url, "swap", users, 16, seconds)
        t.join()
        time.sleep(1.5)
        served = httpx.get(srv.url + "/models").json()["models"][0]["version"]
        swapped = float(re.search(r"^tastebud_model_swaps_total (\S+)", httpx.get(srv.url + "/metrics").text, re.M).group(1))
    finally:
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)
    r.update(versions_written=len(swaps), served_version=served, swaps_counted=swapped)
    print(f"  hot swap: {r['requests']} requests, {r['errors']} failed, {len(swaps)} versions written, "
          f"now serving v{served}; p99 {r['p99_ms']:.2f} ms (load {r['load']})")
    return r


# ---------------------------------------------------------------------------- events
def _post_events(url: str, conns: int, seconds: float, batch: int, tag: str, acked: list) -> dict:
    """``conns`` threads, each a keep-alive client posting ``batch`` events per request until
    ``seconds`` pass or the server dies; records the acknowledged (user, item) pairs."""
    import httpx

    stop = time.monotonic() + seconds
    status: dict = {}
    lock = threading.Lock()

    def worker(w: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as c:
            j = 0
            while time.monotonic() < stop:
                evs = [{"user": f"{tag}-{w}", "item": j + b, "weight": 1.0} for b in range(batch)]
                j += batch
                try:
                    r = c.post("/events", json={"events": evs} if batch > 1 else evs[0])
                except httpx.HTTPError:
                    return  # the server died under us: these were never acknowledged
                with lock:
                    status[r.status_code] = status.get(r.status_code, 0) + 1
                    if r.status_code == 200:
                        acked.extend((e["user"], e["item"]) for e in evs)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return status


def _commits(url: str) -> float:
    import httpx

    return float(re.search(r"^tastebud_event_commits (\S+)", httpx.get(url + "/metrics").text, re.M).group(1))


def events(seconds: float) -> list[dict]:
    from tastebud.serving.events import read_events

    d = Path(tempfile.mkdtemp(prefix="events-"))
    shutil.copy(ROOT / "tests" / "data" / "format_v1" / "popularity.tbm", d / "pop.tb")
    rows = []
    srv = Server(d)
    try:
        for batch, conns in ((1, 16), (50, 8)):
            acked: list = []
            import httpx

            c0 = _commits(srv.url)
            t0 = time.monotonic()
            st = _post_events(srv.url, conns, seconds, batch, f"b{batch}", acked)
            dt = time.monotonic() - t0
            commits = _commits(srv.url) - c0
            rows.append({"batch": batch, "conns": conns, "acked": len(acked), "events_per_s": len(acked) / dt,
                         "commits": commits, "statuses": st, "load": load_avg()})
            print(f"  events: batch {batch:2d}, {conns} conns: {len(acked) / dt:.0f} acknowledged events/s, "
                  f"{commits} commits (fsyncs), {len(acked) / max(commits, 1):.1f} events per commit, statuses {st} "
                  f"(load {load_avg()})", flush=True)
        # kill -9 in the middle of a load
        acked = []
        killer = threading.Timer(seconds / 2, lambda: srv.proc.send_signal(signal.SIGKILL))
        killer.start()
        _post_events(srv.url, 8, seconds, 10, "kill", acked)
        srv.proc.wait(10)
        stored = {(u, i) for u, i, *_ in read_events(d / "events.db")}
        lost = [a for a in acked if a not in stored]
        rows.append({"kill9_acked": len(acked), "kill9_lost": len(lost), "rc": srv.proc.returncode})
        print(f"  kill -9 mid-load: {len(acked)} acknowledged, {len(lost)} lost (server rc {srv.proc.returncode})")
        srv2 = Server(d)
        import httpx

        n = sum(len(httpx.get(f"{srv2.url}/events/kill-{w}").json()["events"]) for w in range(8))
        srv2.stop()
        rows.append({"after_restart_served": n})
        print(f"  after restart the service holds {n} of them (≥ {len(acked)} expected)")
    finally:
        srv.stop()
        shutil.rmtree(d, ignore_errors=True)
    return rows


# ---------------------------------------------------------------------------- ANN
def ann(folder: Path, k: int = 10) -> dict:
    import tastebud as tb

    try:
        import faiss
    except ImportError:
        print("  faiss-cpu not installed (pip install faiss-cpu): ANN skipped")
        return {}
    m = tb.load(folder / "synth100k.tb")
    Y = np.ascontiguousarray(m.item_factors_, dtype=np.float32)
    X = np.ascontiguousarray(m.user_factors_[1:1001], dtype=np.float32)
    faiss.omp_set_num_threads(1)
    t0 = time.perf_counter()
    exact = np.empty((len(X), k), dtype=np.int64)
    for j in range(len(X)):  # one query at a time, as the service scores: a product and a partial sort
        s = Y @ X[j]
        top = np.argpartition(-s, k)[:k]
        exact[j] = top[np.argsort(-s[top])]
    t_exact = (time.perf_counter() - t0) / len(X)
    t0 = time.perf_counter()
    index = faiss.IndexHNSWFlat(Y.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 80
    index.add(Y)
    build = time.perf_counter() - t0
    out = {"items": len(Y), "build_s": build, "exact_ms_per_query": t_exact * 1000, "load": load_avg()}
    for ef in (64, 128, 256):
        index.hnsw.efSearch = ef
        t0 = time.perf_counter()
        _, got = index.search(X, k)
        tq = (time.perf_counter() - t0) / len(X)
        rec = np.mean([len(set(a) & set(b)) / k for a, b in zip(exact, got)])
        out[f"ef{ef}"] = {"recall@10": float(rec), "ms_per_query": tq * 1000}
        print(f"  faiss HNSW ef={ef}: recall@10 {rec:.3f}, {tq * 1000:.3f} ms/query (exact {t_exact * 1000:.3f} ms/query;"
              f" build {build:.1f} s; load {load_avg()})")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 s runs, 1 and 16 connections")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each wrk run")
    ap.add_argument("--json", default=None)
    ap.add_argument("--only", default="latency,swap,events,ann")
    a = ap.parse_args()
    secs = 3.0 if a.quick else a.seconds
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed (apt-get install wrk)")
    only = set(a.only.split(","))
    print(f"# serve benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load {load_avg()}", flush=True)
    folder = Path(tempfile.mkdtemp(prefix="serve-models-"))
    res: dict = {}
    try:
        info = build_models(folder, a.quick)
        res["models"] = {k: {kk: vv for kk, vv in v.items() if kk != "users_sample"} for k, v in info.items()}
        print("models:", res["models"], flush=True)
        if "latency" in only:
            res["latency"] = latency(folder, info, secs, a.quick)
        if "swap" in only:
            res["swap"] = hot_swap(folder, info, max(secs, 12.0))
        if "events" in only:
            res["events"] = events(max(secs / 2, 3.0))
        if "ann" in only:
            res["ann"] = ann(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main()
