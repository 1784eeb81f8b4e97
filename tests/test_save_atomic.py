"""Saves leave nothing behind (issue #15 item 2): a save killed with SIGKILL leaves the previous file
intact and loadable, and its temporary file is removed by the next save; temporaries of writers
that are still running are kept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import tastebud as tb
from tastebud.persistence import STALE_SECONDS, TMP_TAG, _host_tag, clean_stale_temps, temp_prefix

SRC = str(Path(tb.__file__).resolve().parents[1])

# saves a ~50 MB model over and over, announcing each save on stdout
WRITER = """
import sys
sys.path.insert(0, {tests!r})
import numpy as np
import _model_zoo as Z
import tastebud as tb
data = Z.datasets()
m = Z.make("implicit-als", data)
rng = np.random.default_rng(0)
m.user_factors_ = rng.random((m.user_factors_.shape[0], 300_000), dtype=np.float32)
m.item_factors_ = rng.random((m.item_factors_.shape[0], 300_000), dtype=np.float32)
for i in range(1000):
    print("saving", i, flush=True)
    m.save({target!r})
"""


def temps(target: Path) -> list[Path]:
    return sorted(p for p in target.parent.iterdir() if p.name.startswith(f".{target.name}.") and p != target)


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL")
def test_saves_killed_with_sigkill_leave_a_loadable_file_and_no_temps(tmp_path):
    target = tmp_path / "big.tbm"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    code = textwrap.dedent(WRITER.format(tests=str(Path(__file__).parent), target=str(target)))
    rng = np.random.default_rng(0)
    left_behind = 0
    for round_ in range(3):
        p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        try:
            # let one save complete (from the second round on, the file exists already), then kill
            # the process somewhere inside the next one
            assert p.stdout.readline().startswith(b"saving 0"), p.stderr.read().decode()[-2000:]
            if round_ == 0:
                assert p.stdout.readline().startswith(b"saving 1")
            time.sleep(float(rng.uniform(0.0, 0.25)))
            p.send_signal(signal.SIGKILL)
        finally:
            p.wait(timeout=60)
        assert p.returncode == -signal.SIGKILL
        m = tb.load(target)  # always the last complete save
        assert m.user_factors_.shape[1] == 300_000
        left = temps(target)
        assert len(left) <= 1, left  # at most the killed writer's own temp
        left_behind += len(left)
    assert left_behind >= 1, "no kill landed inside a save: the test did not test anything"
    # the next save removes the dead writers' temps
    tb.load(target).save(target)
    assert temps(target) == []
    assert tb.load(target).user_factors_.shape == (tb.load(target).n_users, 300_000)


def test_stale_temps_are_removed_but_a_live_writers_temp_is_kept(tmp_path):
    target = tmp_path / "m.tbm"
    prefix = temp_prefix(target)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    live = tmp_path / f"{prefix}{_host_tag()}.{os.getpid()}.aaaa"  # this process: alive
    gone = tmp_path / f"{prefix}{_host_tag()}.{dead_pid}.bbbb"  # its writer has exited
    other_host = tmp_path / f"{prefix}ffffffff.{os.getpid()}.cccc"  # pid unknowable: age only
    old_other_host = tmp_path / f"{prefix}ffffffff.{os.getpid()}.dddd"
    legacy_old = tmp_path / f".{target.name}.abcd1234.tmp"  # tempfile.mkstemp names of earlier versions
    legacy_new = tmp_path / f".{target.name}.efgh5678.tmp"
    unrelated = tmp_path / ".other.tbm.tastebud-tmp.x.1.y"
    for f in (live, gone, other_host, old_other_host, legacy_old, legacy_new, unrelated):
        f.write_bytes(b"x")
    old = time.time() - STALE_SECONDS - 10
    for f in (old_other_host, legacy_old):
        os.utime(f, (old, old))
    removed = clean_stale_temps(target)
    assert sorted(removed) == sorted([gone, old_other_host, legacy_old])
    assert live.exists() and other_host.exists() and legacy_new.exists() and unrelated.exists()
    assert TMP_TAG in live.name


def test_save_writes_a_fresh_file_readable_by_others(tmp_path):
    """The temp is created with the usual permissions (not mkstemp's 0600) and leaves nothing behind."""
    m = tb.Popularity().fit(tb.Interactions.from_frame(
        __import__("pandas").DataFrame({"user": [1, 2, 2], "item": [1, 1, 2]})))
    target = tmp_path / "p.tbm"
    m.save(target)
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    assert temps(target) == []
