"""A model file is untrusted input (issue #15 item 1, issue #14 item 5): every defect is a FormatError
naming the file (and member), found before any array reaches a kernel and before any large
allocation. Cases that crashed or exhausted the process before run in a subprocess with a capped
address space, so a regression fails the test instead of killing the test run."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

import _mangle as M
import tastebud as tb
from tastebud import FormatError
from tastebud.persistence import FLOOR, LIMIT_ENV, RATIO

SRC = str(Path(tb.__file__).resolve().parents[1])


def run_isolated(code: str, mem_gb: float = 2.5, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter whose address space is capped at ``mem_gb`` GiB."""
    def cap():
        lim = int(mem_gb * (1 << 30))
        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))

    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, preexec_fn=cap, env=env)


LOAD_AND_USE = """
import sys
sys.path.insert(0, {tests!r})
import _model_zoo as Z
import tastebud as tb
try:
    m = tb.load({path!r})
    Z.exercise(m, Z.datasets())
    print("LOADED")
except tb.FormatError as e:
    print("FormatError:", e)
"""


def load_isolated(path: Path, mem_gb: float = 2.5) -> str:
    r = run_isolated(LOAD_AND_USE.format(tests=str(Path(__file__).parent), path=str(path)), mem_gb)
    assert r.returncode == 0, f"the process died (rc {r.returncode}) on {path.name}: {r.stderr[-2000:]}"
    return r.stdout


# ---------------------------------------------------------------------- arrays that lie
def test_an_index_past_a_table_is_refused_before_any_kernel(zoo, tmp_path):
    """An item index of 49,999,999 into a small table made predict read far outside it (segfault).
    All four files are loaded and used in one child process."""
    _, files = zoo
    cases = [("fm", "Xi_indices"), ("svdpp", "implicit_indices"), ("transitions", "T_indices"), ("mf", "seen_indices")]
    paths = []
    for name, array in cases:
        a = M.arrays(files[name])[array].copy()
        a[0] = 49_999_999
        paths.append(M.rewrite(files[name], tmp_path / f"{name}.tbm", arrays={array: a}))
    code = "\n".join(LOAD_AND_USE.format(tests=str(Path(__file__).parent), path=str(p)) for p in paths)
    r = run_isolated(code)
    assert r.returncode == 0, f"the process died (rc {r.returncode}): {r.stderr[-2000:]}"
    out = r.stdout.splitlines()
    assert len(out) == len(cases)
    for line, (name, array), p in zip(out, cases, paths):
        assert line.startswith("FormatError") and repr(array) in line and "49999999" in line and str(p) in line


def test_a_huge_seen_index_is_refused_without_allocating(zoo, tmp_path):
    """seen_indices = 10^9 made load() allocate 7.6 GB (a bincount over it)."""
    _, files = zoo
    a = M.arrays(files["popularity"])["seen_indices"].copy()
    a[-1] = 10**9
    out = load_isolated(M.rewrite(files["popularity"], tmp_path / "bad.tbm", arrays={"seen_indices": a}), mem_gb=2.0)
    assert out.startswith("FormatError") and "'seen_indices'" in out


def test_a_deflate_bomb_is_refused_before_decompressing(zoo, tmp_path):
    """A 0.25 MiB deflated member that expands to 256 MiB (the issue's 1 MiB bomb expanded to 2.16 GB)."""
    _, files = zoo
    bad = tmp_path / "bomb.tbm"
    with zipfile.ZipFile(bad, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for n, b in M.members(files["popularity"]).items():
            if n != "arrays/popularity.npy":
                z.writestr(n, b)
        with z.open("arrays/popularity.npy", "w", force_zip64=True) as f:
            f.write(M.npy_header((64 << 20,), "<f4"))
            chunk = bytes(1 << 20)
            for _ in range(256):
                f.write(chunk)
    assert bad.stat().st_size < 1 << 20
    out = load_isolated(bad, mem_gb=2.0)
    assert out.startswith("FormatError") and "limit" in out and "max_uncompressed" in out


def test_a_header_claiming_a_trillion_entries_is_refused_without_allocating(zoo, tmp_path):
    """An .npy header claiming shape (10^12,) raised a raw MemoryError."""
    _, files = zoo
    lying = M.npy_header((10**12,), "<f4") + bytes(60)
    bad = M.rewrite(files["popularity"], tmp_path / "bad.tbm", raw={"arrays/popularity.npy": lying})
    with pytest.raises(FormatError) as e:
        tb.load(bad)
    assert "'popularity'" in str(e.value) and "1000000000000" in str(e.value) and str(bad) in str(e.value)


@pytest.mark.parametrize("name, array", [("implicit-als", "item_factors"), ("mf", "user_bias"), ("ease", "B"),
                                         ("item2vec", "item_vectors"), ("baseline", "global_mean")])
def test_non_finite_numbers_are_refused(zoo, tmp_path, name, array):
    """NaN-filled factors used to load and answer NaN."""
    _, files = zoo
    a = M.arrays(files[name])[array].astype(float)
    a[...] = np.nan
    bad = M.rewrite(files[name], tmp_path / "bad.tbm", arrays={array: a.astype(M.arrays(files[name])[array].dtype)})
    with pytest.raises(FormatError, match=rf"{array!r}.*(nan|finite)"):
        tb.load(bad)


def test_shapes_must_agree_with_the_id_maps(zoo, tmp_path):
    _, files = zoo
    uf = M.arrays(files["implicit-als"])["user_factors"]
    bad = M.rewrite(files["implicit-als"], tmp_path / "bad.tbm", arrays={"user_factors": uf[:-1]})
    with pytest.raises(FormatError, match="'user_factors'.*n_users"):
        tb.load(bad)
    ip = M.arrays(files["popularity"])["seen_indptr"].copy()
    ip[3] = ip[4] + 1
    bad = M.rewrite(files["popularity"], tmp_path / "bad2.tbm", arrays={"seen_indptr": ip})
    with pytest.raises(FormatError, match="'seen_indptr' decreases"):
        tb.load(bad)
    ids = M.arrays(files["popularity"])["items_ids"].copy()
    ids[1] = ids[0]
    bad = M.rewrite(files["popularity"], tmp_path / "bad3.tbm", arrays={"items_ids": ids})
    with pytest.raises(FormatError, match="'items_ids' holds the id"):
        tb.load(bad)


def test_an_inconsistent_itemset_trie_is_refused(zoo, tmp_path):
    """The rule kernels walk the trie without bounds checks: a cycle or a child range past the end must not load."""
    _, files = zoo
    for name, prefix in (("fpgrowth", ""), ("rules", "fp_")):
        a = M.arrays(files[name])
        tp = a[f"{prefix}t_parent"].copy()
        tp[-1] = len(tp) - 1  # its own parent
        with pytest.raises(FormatError, match="trie"):
            tb.load(M.rewrite(files[name], tmp_path / f"{name}1.tbm", arrays={f"{prefix}t_parent": tp}))
        tn = a[f"{prefix}t_nchild"].copy()
        tn[1] += 1
        with pytest.raises(FormatError, match="trie"):
            tb.load(M.rewrite(files[name], tmp_path / f"{name}2.tbm", arrays={f"{prefix}t_nchild": tn}))


@pytest.mark.torch
def test_torch_state_dicts_are_checked_against_the_network(zoo, tmp_path):
    """A state dict entry of the wrong shape, a huge width or NaN weights is refused before the network is built."""
    pytest.importorskip("torch")
    _, files = zoo
    a = M.arrays(files["sasrec"])
    w = a["net.pos_emb.weight"].copy()
    w[0, 0] = np.inf
    with pytest.raises(FormatError, match="'net.pos_emb.weight'"):
        tb.load(M.rewrite(files["sasrec"], tmp_path / "s1.tbm", arrays={"net.pos_emb.weight": w}))
    md = M.meta(files["sasrec"])
    md["params"]["hidden"] = 10**9  # would allocate 10^9 x n_items floats if the net were built first
    with pytest.raises(FormatError, match="net"):
        tb.load(M.rewrite(files["sasrec"], tmp_path / "s2.tbm", meta=md))
    md = M.meta(files["sasrec"])
    md["params"]["layers"] = 10**9
    with pytest.raises(FormatError, match="block"):
        tb.load(M.rewrite(files["sasrec"], tmp_path / "s3.tbm", meta=md))
    md = M.meta(files["multimodal"])
    md["extra"]["schema"]["n_buckets"] = 10**12
    with pytest.raises(FormatError, match="sd.bag_emb"):
        tb.load(M.rewrite(files["multimodal"], tmp_path / "m1.tbm", meta=md))
    md = M.meta(files["multimodal"])
    md["extra"]["rec_roles"] = [0]
    with pytest.raises(FormatError, match="rec_roles"):
        tb.load(M.rewrite(files["multimodal"], tmp_path / "m2.tbm", meta=md))


# ---------------------------------------------------------------------- meta.json
def _meta_cases(md: dict) -> dict[str, object]:
    def with_(**kw):
        return {**md, **kw}

    deep = "[" * 100_000 + "]" * 100_000
    return {
        "a list": [md],
        "a string": "tastebud",
        "class is a number": with_(**{"class": 5}),
        "params is a list": with_(params=[1, 2]),
        "extra is a string": with_(extra="x"),
        "arrays is a dict": with_(arrays={"a": 1}),
        "an array name is a number": with_(arrays=[*md["arrays"], 7]),
        "format_version is true": with_(format_version=True),
        "unknown class": with_(**{"class": "no-such-model"}),
        "unknown parameter": with_(params={**md["params"], "n_fcators": 3}),
        "parameter of the wrong type": with_(params={**md["params"], "num_threads": "many"}),
        "non-finite parameter": with_(params={**md["params"], "alpha": float("nan")}),
        "missing array": with_(arrays=[a for a in md["arrays"] if a != "user_factors"]),
        "array listed but absent": with_(arrays=[*md["arrays"], "ghost"]),
        "deep nesting": deep,
        "deep nesting in params": "DEEP",
    }


@pytest.mark.parametrize("case", list(_meta_cases({"arrays": [], "params": {}})))
def test_every_malformed_meta_json_is_a_format_error(zoo, tmp_path, case):
    _, files = zoo
    src = files["implicit-als"]
    md = M.meta(src)
    value = _meta_cases(md)[case]
    raw = M.members(src)
    if value == "DEEP":
        text = json.dumps({**md, "params": {**md["params"], "alpha": "@"}}).replace('"@"', "[" * 500 + "]" * 500)
    elif isinstance(value, str) and value.startswith("["):
        text = value
    else:
        text = json.dumps(value)
    raw["meta.json"] = text.encode()
    if case == "missing array":
        raw.pop("arrays/user_factors.npy")
    bad = M.write(tmp_path / "bad.tbm", raw)
    with pytest.raises(FormatError) as e:
        tb.load(bad)
    assert str(bad) in str(e.value)


def test_invalid_utf8_and_json_in_meta(zoo, tmp_path):
    _, files = zoo
    raw = M.members(files["popularity"])
    for name, body in (("utf8", raw["meta.json"].replace(b'"popularity"', b'"popul\xffrity"')),
                       ("json", raw["meta.json"][:-5]), ("bigint", b'{"format": ' + b"9" * 5000 + b"}")):
        bad = M.write(tmp_path / f"{name}.tbm", {**raw, "meta.json": body})
        with pytest.raises(FormatError, match="meta.json"):
            tb.load(bad)


def test_deprecated_parameter_names_map_through_the_class_alias_table(zoo, tmp_path, monkeypatch):
    """load() accepts a parameter under a deprecated name listed in the class's ``renamed_params``
    (filled by the models that renamed one) and passes it under its current name."""
    _, files = zoo
    md = M.meta(files["popularity"])
    md["params"] = {"weight": True}
    bad = M.rewrite(files["popularity"], tmp_path / "old.tbm", meta=md)
    with pytest.raises(FormatError, match="unknown parameter 'weight'"):
        tb.load(bad)
    monkeypatch.setattr(tb.Popularity, "renamed_params", {"weight": "weighted"})
    assert tb.load(bad).weighted is True
    md["params"] = {"weight": True, "weighted": False}
    with pytest.raises(FormatError, match="twice"):
        tb.load(M.rewrite(files["popularity"], tmp_path / "both.tbm", meta=md))


# ---------------------------------------------------------------------- the container
def test_a_crc_mismatch_names_the_file_and_member(zoo, tmp_path):
    """Issue #14 item 5: a corrupted file raised a bare BadZipFile: Bad CRC-32."""
    _, files = zoo
    data = bytearray(files["implicit-als"].read_bytes())
    with zipfile.ZipFile(files["implicit-als"]) as z:
        info = z.getinfo("arrays/item_factors.npy")
    data[info.header_offset + 30 + len(info.filename) + len(info.extra) + 140] ^= 0xFF  # inside the float data
    bad = tmp_path / "crc.tbm"
    bad.write_bytes(bytes(data))
    with pytest.raises(FormatError) as e:
        tb.load(bad)
    assert str(bad) in str(e.value) and "item_factors" in str(e.value) and "CRC" in str(e.value)


def test_truncated_files_and_odd_members(zoo, tmp_path):
    _, files = zoo
    data = files["popularity"].read_bytes()
    for cut in (10, len(data) // 2, len(data) - 10):
        bad = tmp_path / f"cut{cut}.tbm"
        bad.write_bytes(data[:cut])
        with pytest.raises(FormatError, match=str(bad)):
            tb.load(bad)
    raw = M.members(files["popularity"])
    dup = tmp_path / "dup.tbm"
    with zipfile.ZipFile(dup, "w") as z, pytest.warns(UserWarning, match="Duplicate"):
        for n, b in raw.items():
            z.writestr(n, b)
        z.writestr("meta.json", raw["meta.json"])
    with pytest.raises(FormatError, match="twice"):
        tb.load(dup)
    bz = M.write(tmp_path / "bz.tbm", raw, compression=zipfile.ZIP_BZIP2)
    with pytest.raises(FormatError, match="compression"):
        tb.load(bz)
    with pytest.raises(FormatError, match="directory"):
        tb.load(tmp_path)


def test_the_size_limit_is_overridable(zoo, tmp_path, monkeypatch):
    _, files = zoo
    p = files["popularity"]
    size = p.stat().st_size
    with pytest.raises(FormatError, match="limit of 1000 bytes"):
        tb.load(p, max_uncompressed=1000)
    monkeypatch.setenv(LIMIT_ENV, "1000")
    with pytest.raises(FormatError, match="limit of 1000 bytes"):
        tb.load(p)
    assert tb.load(p, max_uncompressed=10 * size).registry_name == "popularity"  # the argument wins
    monkeypatch.delenv(LIMIT_ENV)
    # a genuine file recompressed with deflate loads under the default limit
    zipped = M.write(tmp_path / "deflated.tbm", M.members(p), compression=zipfile.ZIP_DEFLATED)
    assert tb.load(zipped).registry_name == "popularity"
    assert RATIO >= 4 and FLOOR >= 1 << 20


def test_pickled_or_structured_dtypes_are_refused(zoo, tmp_path):
    _, files = zoo
    rec = np.zeros(15, dtype=[("a", "<f4")])
    with pytest.raises(FormatError, match="'popularity'.*safely"):
        tb.load(M.rewrite(files["popularity"], tmp_path / "s.tbm", arrays={"popularity": rec}))
    with pytest.raises(FormatError, match="'popularity'.*float"):
        tb.load(M.rewrite(files["popularity"], tmp_path / "i.tbm", arrays={"popularity": np.arange(15)}))


def test_every_registered_model_round_trips_through_the_checks(zoo):
    """The declarations accept what each model actually saves, and the loaded model answers."""
    import _model_zoo as Z
    from tastebud.models import registry

    data, files = zoo
    assert set(files) == {n for n in registry.names() if registry.available(n)}
    for name, p in files.items():
        m = tb.load(p)
        assert m.registry_name == name
        Z.exercise(m, data)
