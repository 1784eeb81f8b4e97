"""Progress bars on long fits, and quiet (issue #14 item 8).

Every model whose fit can take more than a few seconds shows a tqdm bar on a terminal by default
(``verbose=None``), always with ``verbose=True``, never with ``verbose=False``; ``TQDM_DISABLE=1``
(what ``tastebud -q`` sets) silences all of them, ``verbose=True`` and SASRec's included. The
CLI checks run the real command in a pseudo-terminal, as a user's shell would."""

from __future__ import annotations

import fcntl
import importlib.util
import io
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tastebud as tb
from tastebud.data.interactions import Interactions

HAS_TORCH = importlib.util.find_spec("torch") is not None
SRC = str(Path(__file__).resolve().parents[1] / "src")


def _ratings() -> Interactions:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user": rng.integers(0, 40, 600), "item": rng.integers(0, 30, 600),
                       "rating": rng.integers(1, 6, 600).astype(float)})
    return Interactions.from_frame(df.drop_duplicates(["user", "item"]), rating="rating")


def _seqs() -> list[list[int]]:
    rng = np.random.default_rng(1)
    return [[int(x) for x in rng.integers(0, 20, 8)] for _ in range(30)]


# (bar title, factory, fit input) for every model with a long-running fit
CASES = [
    ("MatrixFactorization", lambda **kw: tb.MatrixFactorization(factors=2, epochs=2, **kw), _ratings),
    ("SVDpp", lambda **kw: tb.SVDpp(factors=2, epochs=2, **kw), _ratings),
    ("ALS", lambda **kw: tb.ALS(factors=2, epochs=2, **kw), _ratings),
    ("ImplicitALS", lambda **kw: tb.ImplicitALS(factors=2, epochs=2, **kw), _ratings),
    ("BPR", lambda **kw: tb.BPR(factors=2, epochs=2, **kw), _ratings),
    ("PureSVD", lambda **kw: tb.PureSVD(factors=2, **kw), _ratings),
    ("EASE", lambda **kw: tb.EASE(**kw), _ratings),
    ("FM mcmc", lambda **kw: tb.FactorizationMachine(factors=2, epochs=3, **kw), _ratings),
    ("Item2Vec", lambda **kw: tb.Item2Vec(factors=4, epochs=2, num_threads=1, **kw), _seqs),
]
if HAS_TORCH:
    CASES += [
        ("SASRec", lambda **kw: tb.SASRec(hidden=8, layers=1, max_len=6, epochs=2, init="random", num_threads=1, **kw), _seqs),
        ("MultimodalModel", lambda **kw: tb.MultimodalModel(fields={"user": "id", "item": "id"}, epochs=2, num_threads=1, **kw),
         lambda: _ratings().to_frame()),
    ]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:  # what tqdm asks of its output to decide on verbose=None
        return True


@pytest.mark.parametrize("title,make,data", CASES, ids=[c[0] for c in CASES])
def test_every_long_fit_has_a_bar_that_quiet_silences(title, make, data, monkeypatch, capsys):
    d = data()
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    make(verbose=True).fit(d)
    assert f"{title}:" in capsys.readouterr().err  # tqdm writes "<desc>: <pct>|<bar>|"
    make(verbose=False).fit(d)
    assert title not in capsys.readouterr().err
    term = _Terminal()
    monkeypatch.setattr(sys, "stderr", term)
    make().fit(d)  # the default, verbose=None: a bar on a terminal
    monkeypatch.undo()
    assert f"{title}:" in term.getvalue()
    monkeypatch.setenv("TQDM_DISABLE", "1")  # quiet wins, even over verbose=True
    make(verbose=True).fit(d)
    assert capsys.readouterr().err == ""


def _run_in_terminal(args: list[str], quiet_env: bool = False, timeout: float = 240) -> str:
    """Run ``python -m tastebud.cli ARGS`` with stdout and stderr on a pseudo-terminal; all output."""
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    master, slave = pty.openpty()
    # a terminal of 24 × 100 characters: tqdm sizes its bar from it (a 0 × 0 pty gets no bar at all)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "tastebud.cli", *args], stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], timeout)
            if not ready:
                raise TimeoutError(f"no output for {timeout} s: {args}")
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        proc.wait(timeout=timeout)
        os.close(master)
    out = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, out
    return out


def test_cli_fit_shows_a_bar_on_a_terminal_and_q_silences_it(tmp_path):
    df = _ratings().to_frame()
    path = tmp_path / "r.csv"
    df.to_csv(path, index=False)
    loud = _run_in_terminal(["fit", "mf", "--data", str(path), "--out", str(tmp_path / "a.tb"), "-p", "epochs=3"])
    assert "MatrixFactorization:" in loud and "epoch" in loud and "fitted mf" in loud
    quiet = _run_in_terminal(["-q", "fit", "mf", "--data", str(path), "--out", str(tmp_path / "b.tb"), "-p", "epochs=3"])
    assert "MatrixFactorization" not in quiet and "%|" not in quiet and "fitted mf" in quiet


@pytest.mark.slow  # two torch start-ups (~30-70 s here); the in-process case above runs by default
@pytest.mark.skipif(not HAS_TORCH, reason="needs torch")
def test_cli_q_silences_sasrec_even_with_verbose_true(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("".join(f"u{u} i{i}\n" for u, s in enumerate(_seqs()) for i in s))
    args = ["fit", "sasrec", "--data", str(path), "-p", "hidden=8", "-p", "epochs=2", "-p", 'init="random"',
            "-p", "verbose=true"]
    loud = _run_in_terminal([*args, "--out", str(tmp_path / "a.tb")])
    assert "SASRec:" in loud
    quiet = _run_in_terminal(["-q", *args, "--out", str(tmp_path / "b.tb")])
    assert "SASRec" not in quiet and "%|" not in quiet and "fitted sasrec" in quiet
