"""Property-based fuzzing (issue #15 item 6): the readers, the id maps and the model file format
either give a clean result or a named DataError/FormatError — never another exception, a crash or
a huge allocation.

The default run uses a small example budget (a few seconds); the ``slow`` variants a large one.
The model-file fuzzing runs in a child process with a capped address space (tests/_fuzz_model_files.py),
so a segfault in a kernel or a runaway allocation fails the test instead of the test run."""

from __future__ import annotations

import gzip
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tastebud as tb
from tastebud import DataError, Interactions, Sequences
from tastebud.data.baskets import Baskets
from tastebud.data.idmap import IdMap, normalize_ids
from tastebud.data.libfm import read_libfm

HERE = Path(__file__).parent
SRC = str(Path(tb.__file__).resolve().parents[1])
FAST = settings(max_examples=40, deadline=None, database=None, suppress_health_check=list(HealthCheck))
SLOW = settings(max_examples=1500, deadline=None, database=None, suppress_health_check=list(HealthCheck))

TOKENS = ["1", "2", "-3", "0", "007", "9223372036854775807", "9223372036854775808", "18446744073709551615",
          "99999999999999999999", "1.5", "2.0", "nan", "NaN", "inf", "", " ", "a", "b", "é", "\U0001f600", "a\x00",
          "\x00", "#", ":", "1:2", "0:nan", "3:1e400", '"', "'", "\\", "\t", ",", ";", "|", "1e5", "-0"]
LINE = st.lists(st.sampled_from(TOKENS), min_size=0, max_size=6)
SEPS = st.sampled_from([",", " ", "\t", ";"])


@st.composite
def text_files(draw) -> bytes:
    sep = draw(SEPS)
    lines = draw(st.lists(LINE, min_size=0, max_size=8))
    header = draw(st.sampled_from(["user,item,rating\n", "user item\n", "", "user\n"]))
    body = header + "".join(sep.join(line) + draw(st.sampled_from(["\n", "\r\n", ""])) for line in lines)
    raw = body.encode("utf-8")
    if draw(st.booleans()):  # a stray invalid byte somewhere
        pos = draw(st.integers(0, len(raw)))
        raw = raw[:pos] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x80\x80", b"\x00"])) + raw[pos:]
    return raw


def write(tmp: Path, raw: bytes, suffix: str, compress: str) -> Path:
    p = tmp / f"f{suffix}"
    if compress == "gz":
        raw = gzip.compress(raw)
        p = tmp / f"f{suffix}.gz"
    elif compress == "gz-cut":
        raw = gzip.compress(raw)
        raw = raw[: max(0, len(raw) - 9)]
        p = tmp / f"f{suffix}.gz"
    elif compress == "gz-junk":
        p = tmp / f"f{suffix}.gz"
    p.write_bytes(raw)
    return p


READERS = {
    "interactions.csv": (".csv", lambda p: Interactions.from_csv(p, rating="rating")),
    "interactions-noheader": (".csv", lambda p: Interactions.from_csv(p, user=0, item=1, header=False)),
    "baskets": (".dat", lambda p: Baskets.from_file(p)),
    "baskets.csv": (".csv", lambda p: Baskets.from_file(p, sep=",")),
    "sequences": (".txt", lambda p: Sequences.from_file(p)),
    "libfm": (".libfm", lambda p: read_libfm(p)),
}


def _readers_property(tmp_path_factory, reader: str, raw: bytes, compress: str) -> None:
    suffix, fn = READERS[reader]
    p = write(tmp_path_factory.mktemp("f"), raw, suffix, compress)
    try:
        fn(p)
    except DataError as e:
        assert str(p) in str(e) or "data" in str(e)  # the message names the file


@FAST
@given(reader=st.sampled_from(sorted(READERS)), raw=text_files(),
       compress=st.sampled_from(["none", "none", "gz", "gz-cut", "gz-junk"]))
def test_readers_give_a_result_or_a_named_data_error(tmp_path_factory, reader, raw, compress):
    _readers_property(tmp_path_factory, reader, raw, compress)


@pytest.mark.slow
@SLOW
@given(reader=st.sampled_from(sorted(READERS)), raw=text_files(),
       compress=st.sampled_from(["none", "none", "gz", "gz-cut", "gz-junk"]))
def test_readers_fuzz_long(tmp_path_factory, reader, raw, compress):
    _readers_property(tmp_path_factory, reader, raw, compress)


# ---------------------------------------------------------------------- ids
ID_VALUES = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([2**63 - 1, 2**63, -(2**63), 2**64 - 1]),
                      st.text(max_size=3), st.sampled_from(["a", "a\x00", "\x00", "1", "01"]),
                      st.floats(allow_nan=True), st.none(), st.booleans(), st.sampled_from([np.int32(3), np.uint64(2**64 - 1),
                                                                                          np.str_("a"), np.float64(2.0)]))


def _ids_property(values: list) -> None:
    try:
        arr = normalize_ids(values, "user")
    except DataError:
        return
    assert arr.dtype == np.int64 or arr.dtype.kind == "U"
    assert len(arr) == len(values)
    # nothing merged: distinct inputs stay distinct (ints and their integral floats count as one)
    canon = {(int(v) if isinstance(v, (int, np.integer, float, np.floating)) else str(v)) for v in values}
    assert len(set(arr.tolist())) == len(canon)
    m, codes = IdMap.from_values(values, "user")
    assert (m.ids[codes] == arr).all()


@FAST
@given(values=st.lists(ID_VALUES, max_size=6))
def test_ids_are_ints_or_strings_never_merged(values):
    _ids_property(values)


@pytest.mark.slow
@SLOW
@given(values=st.lists(ID_VALUES, max_size=8))
def test_ids_fuzz_long(values):
    _ids_property(values)


# ---------------------------------------------------------------------- the model file format
def _fuzz_model_files(zoo, examples: int, seed: int) -> None:
    _, files = zoo
    zoo_dir = next(iter(files.values())).parent

    def cap():  # room for torch (about 2.4 GB of address space here), not for a runaway allocation
        lim = 5 << 30
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))

    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    r = subprocess.run([sys.executable, "-W", "ignore", str(HERE / "_fuzz_model_files.py"), str(zoo_dir), str(examples),
                        str(seed)], capture_output=True, text=True, env=env, preexec_fn=cap, timeout=1500)
    assert r.returncode == 0, f"fuzzing died or found a case (rc {r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"
    assert f"ok: {examples}" in r.stdout


def test_mangled_model_files_fail_cleanly_or_work(zoo):
    """Every registered model's file, mangled (bytes, arrays, .npy headers, meta.json): FormatError,
    or a model that works. A fixed seed keeps the default run reproducible."""
    _fuzz_model_files(zoo, examples=100, seed=0)


@pytest.mark.slow
def test_mangled_model_files_fuzz_long(zoo):
    seed = int.from_bytes(os.urandom(4), "little")
    print(f"model-file fuzzing seed {seed}")
    _fuzz_model_files(zoo, examples=3000, seed=seed)
