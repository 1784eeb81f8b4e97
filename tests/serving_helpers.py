"""Shared by the service tests: a small planted catalogue, a served folder of real models, and a
real uvicorn process (``tastebud serve``) on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

GENRES = ["Space", "Cooking", "Garden"]
N_PER = 20  # items per genre


def catalogue() -> pd.DataFrame:
    rows = []
    for g, genre in enumerate(GENRES):
        for j in range(N_PER):
            rows.append({"item": g * N_PER + j, "title": f"{genre} Story {j}", "genres": genre})
    return pd.DataFrame(rows)


def interactions(seed: int = 0) -> pd.DataFrame:
    """90 users, each with 8 items of one genre (planted: a genre's items go together)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(90):
        g = u % 3
        for i in rng.choice(N_PER, 8, replace=False):
            rows.append((u, g * N_PER + int(i), float(rng.integers(1, 5)), u * 100 + len(rows)))
    return pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])


def build_folder(root: Path, with_rules: bool = True) -> Path:
    """root/models: als.tb (ImplicitALS, the default by name order), bpr/1.tb, rules.tb; root/items.csv."""
    import tastebud as tb

    models = root / "models"
    models.mkdir(parents=True, exist_ok=True)
    df = interactions()
    inter = tb.Interactions.from_frame(df, rating="rating")
    tb.ImplicitALS(factors=8, epochs=8, reg=0.05, random_state=0, num_threads=1).fit(inter).save(models / "als.tb")
    (models / "bpr").mkdir(exist_ok=True)
    tb.BPR(factors=8, epochs=20, random_state=0, num_threads=1).fit(inter).save(models / "bpr" / "1.tb")
    if with_rules:
        baskets = [g["item"].tolist() for _, g in df.groupby("user")]
        tb.RuleRecommender(min_support=0.05, min_confidence=0.2).fit(baskets).save(models / "rules.tb")
    catalogue().to_csv(root / "items.csv", index=False)
    df.to_csv(root / "ratings.csv", index=False)
    return models


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    """``python -m tastebud.cli serve ...`` in a subprocess (a real uvicorn), stopped on exit."""

    def __init__(self, source: Path, *args: str, log: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[1] / "src")
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
        self.log_path = log
        out = open(log, "ab") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen([sys.executable, "-m", "tastebud.cli", "serve", str(source), "--port", str(self.port),
                                      *args], env=env, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0) -> "Server":
        import httpx

        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log()}")
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready after {timeout}s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path and self.log_path.exists() else ""

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> "Server":
        return self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()
