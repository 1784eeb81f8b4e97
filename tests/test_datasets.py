"""The dataset registry: local folders, cache, verified downloads (with a local fake server), errors."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest

import tastebud as tb
from tastebud.data import datasets as D
from tastebud.exceptions import DataError

REQUIRED = {"movielens-100k", "movielens-latest-small", "movielens-1m", "groceries", "retail", "mushroom",
            "amazon-games", "frappe"}


def _shared() -> Path:
    d = os.environ.get("TASTEBUD_DATA")
    if not d or not Path(d).is_dir():
        pytest.skip("TASTEBUD_DATA is not set")
    return Path(d)


# ---------------------------------------------------------------------- registry facts
def test_names_and_info():
    assert REQUIRED <= set(D.names())
    i = D.info("movielens-1m")
    assert i["sources"][0]["url"].startswith("https://files.grouplens.org/")
    assert i["sources"][0]["md5"] == "c4d9eecfca2ab87c1945afe126590906"
    assert i["in_shared_data_folder"] is False
    for n in D.names():
        info = D.info(n)
        # every remote file carries at least one checksum
        assert all(s["sha256"] or s["md5"] or s["members_sha256"] for s in info["sources"]), n
    with pytest.raises(ValueError, match="known datasets"):
        D.load("no-such-dataset")


def test_local_copies_match_registry_checksums():
    root = _shared()
    for name in REQUIRED - {"movielens-1m", "movielens-latest-small"}:
        spec = D._SPECS[name]
        folder = root / spec.folder
        if not folder.is_dir():
            continue
        for r in spec.remotes:
            for rel, want in r.members.items():
                assert D.sha256_file(folder / rel) == want, (name, rel)
            if r.sha256 and not r.archive and r.convert is None:
                assert D.sha256_file(folder / r.filename) == r.sha256, name
    # mushroom: the UCI file is our CSV without its header line
    mush = (root / "mushroom" / "mushrooms.csv").read_bytes()
    assert hashlib.sha256(mush.split(b"\n", 1)[1]).hexdigest() == D._SPECS["mushroom"].remotes[0].sha256


# ---------------------------------------------------------------------- the real datasets
def test_load_real_datasets():
    root = _shared()
    ml = D.load("movielens-100k", data_dir=root, download=False)
    assert ml.interactions.shape == (943, 1682) and ml.interactions.nnz == 100_000
    assert ml.interactions.timestamps is not None
    assert set(ml.users.columns) >= {"age", "gender", "occupation", "zip"} and len(ml.users) == 943
    assert ml.items.loc[1, "title"] == "Toy Story (1995)"
    assert ml.items.loc[1, "genres"] == ["Animation", "Children's", "Comedy"] and ml.items.loc[1, "year"] == 1995
    assert "u1.base" in ml.files
    # same folder given directly
    assert D.load("movielens-100k", data_dir=root / "ml-100k", download=False).interactions.nnz == 100_000

    ls = D.load("movielens-latest-small", data_dir=root, download=False)
    assert ls.interactions.n_users == 610 and ls.interactions.nnz == 100_836
    assert set(np.unique(ls.interactions.matrix.data)) == set(np.arange(1, 11) / 2)
    assert len(ls.items) == 9742 and ls.items.loc[1, "genres"][0] == "Adventure"
    assert len(ls.extra["tags"]) == 3683

    g = D.load("groceries", data_dir=root, download=False).baskets
    assert (len(g), g.n_items) == (9835, 169)
    r = D.load("retail", data_dir=root, download=False).baskets
    assert (len(r), r.n_items) == (88_162, 16_470)
    m = D.load("mushroom", data_dir=root, download=False).baskets
    assert len(m) == 8124 and (np.diff(m.matrix.indptr) == 23).all()
    assert "veil_type=p" in set(m.items.ids.tolist())
    s = D.load("amazon-games", data_dir=root, download=False).sequences
    assert (s.n_users, s.n_items, s.n_interactions) == (31_013, 23_715, 287_107)
    f = D.load("frappe", data_dir=root, download=False)
    assert f.files["train"].name == "frappe.validation.libfm" and f.files["test"].is_file()


def test_env_var_lookup(monkeypatch, tmp_path):
    root = _shared()
    monkeypatch.setenv("TASTEBUD_DATA", str(root))
    monkeypatch.setenv("TASTEBUD_CACHE", str(tmp_path / "cache"))
    assert D.find("groceries") == root / "groceries"
    assert D.info("groceries")["local_path"] == str(root / "groceries")


# ---------------------------------------------------------------------- downloads with a local fake
U_DATA = "1\t10\t5\t881250949\n1\t20\t3\t881250950\n2\t10\t4\t881250951\n3\t30\t1\t881250952\n"
U_USER = "1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|32067\n"
U_ITEM = "".join(f"{i}|Movie {i} (1995)|01-Jan-1995||http://x|" + "|".join(["0"] * 18 + ["1"]) + "\n" for i in (10, 20, 30))


def _zip(path: Path, top: str, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(f"{top}/{name}", text)
    return path


def _md5(p: Path) -> str:
    return hashlib.md5(p.read_bytes()).hexdigest()


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    monkeypatch.delenv("TASTEBUD_DATA", raising=False)
    monkeypatch.setenv("TASTEBUD_CACHE", str(tmp_path / "cache"))
    return tmp_path


def _patch_remote(monkeypatch, name: str, **changes):
    spec = D._SPECS[name]
    remote = dataclasses.replace(spec.remotes[0], **changes)
    monkeypatch.setitem(D._SPECS, name, dataclasses.replace(spec, remotes=(remote,)))


def test_download_zip_verified_then_cached(isolated, monkeypatch):
    z = _zip(isolated / "ml-100k.zip", "ml-100k", {"u.data": U_DATA, "u.user": U_USER, "u.item": U_ITEM})
    members = {"u.data": hashlib.sha256(U_DATA.encode()).hexdigest()}
    _patch_remote(monkeypatch, "movielens-100k", url=z.as_uri(), md5=_md5(z), members=members)
    ds = D.load("movielens-100k")
    assert ds.path == isolated / "cache" / "ml-100k"
    assert ds.interactions.nnz == 4 and ds.items.loc[10, "genres"] == ["Western"]
    # second time: from the cache, no network
    monkeypatch.setattr(D, "_urlopen", lambda *a, **k: (_ for _ in ()).throw(AssertionError("network used")))
    assert D.load("movielens-100k").interactions.nnz == 4
    assert not [p for p in (isolated / "cache").iterdir() if p.name.startswith(".")]  # temp folders cleaned


def test_archive_checksum_mismatch_is_an_error_and_keeps_nothing(isolated, monkeypatch):
    z = _zip(isolated / "ml-100k.zip", "ml-100k", {"u.data": U_DATA, "u.user": U_USER, "u.item": U_ITEM})
    _patch_remote(monkeypatch, "movielens-100k", url=z.as_uri(), md5="0" * 32, members={})
    with pytest.raises(D.ChecksumError, match="MD5 mismatch"):
        D.load("movielens-100k")
    cache = isolated / "cache"
    assert not (cache / "ml-100k").exists()
    assert not list(cache.iterdir())
    _patch_remote(monkeypatch, "movielens-100k", url=z.as_uri(), md5=None, sha256="f" * 64, members={})
    with pytest.raises(D.ChecksumError, match="SHA-256 mismatch"):
        D.load("movielens-100k")
    # verify=False accepts it (at the caller's risk)
    assert D.load("movielens-100k", verify=False).interactions.nnz == 4


def test_member_checksum_mismatch(isolated, monkeypatch):
    z = _zip(isolated / "ml-100k.zip", "ml-100k", {"u.data": U_DATA, "u.user": U_USER, "u.item": U_ITEM})
    _patch_remote(monkeypatch, "movielens-100k", url=z.as_uri(), md5=_md5(z), members={"u.data": "a" * 64})
    with pytest.raises(D.ChecksumError, match="u.data"):
        D.load("movielens-100k")
    assert not (isolated / "cache" / "ml-100k").exists()


def test_single_file_download_through_urlopen(isolated, monkeypatch):
    body = b"milk,bread\nbeer\nmilk,beer,eggs\n"
    calls = []

    def fake(url, timeout=60.0):
        calls.append(url)
        return io.BytesIO(body)

    monkeypatch.setattr(D, "_urlopen", fake)
    _patch_remote(monkeypatch, "groceries", sha256=hashlib.sha256(body).hexdigest())
    b = D.load("groceries").baskets
    assert calls == [D._SPECS["groceries"].remotes[0].url]
    assert len(b) == 3 and sorted(b.items.ids.tolist()) == ["beer", "bread", "eggs", "milk"]
    # a changed file at the source
    monkeypatch.setattr(D, "_urlopen", lambda url, timeout=60.0: io.BytesIO(body + b"x\n"))
    monkeypatch.setenv("TASTEBUD_CACHE", str(isolated / "cache2"))
    with pytest.raises(D.ChecksumError, match="groceries.csv: SHA-256 mismatch"):
        D.load("groceries")


def test_mushroom_download_converts_uci_file(isolated, monkeypatch):
    rows = "p,x,s,n,t,p,f,c,n,k,e,e,s,s,w,w,p,w,o,p,k,s,u\ne,x,s,y,t,a,f,c,b,k,e,c,s,s,w,w,p,w,o,p,n,n,g\n"
    src = isolated / "agaricus-lepiota.data"
    src.write_text(rows)
    _patch_remote(monkeypatch, "mushroom", url=src.as_uri(), sha256=hashlib.sha256(rows.encode()).hexdigest())
    ds = D.load("mushroom")
    assert (ds.path / "mushrooms.csv").read_text().startswith("type,cap_shape,")
    lists = ds.baskets.to_lists()
    assert len(lists) == 2 and all(len(b) == 23 for b in lists)
    assert "odor=a" in lists[1] and "type=e" in lists[1]


def test_ml1m_download_and_readers(isolated, monkeypatch):
    files = {"ratings.dat": "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n",
             "users.dat": "1::F::1::10::48067\n2::M::56::16::70072\n",
             "movies.dat": "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"}
    z = _zip(isolated / "ml-1m.zip", "ml-1m", files)
    _patch_remote(monkeypatch, "movielens-1m", url=z.as_uri(), md5=_md5(z))
    ds = D.load("movielens-1m")
    assert ds.interactions.nnz == 3 and ds.users.loc[2, "age"] == 56
    assert ds.items.loc[661, "genres"] == ["Animation", "Children's", "Musical"] and ds.items.loc[1193, "year"] == 1975
    bad = isolated / "bad.dat"
    bad.write_text("1::2::3::4\n1::2::x\n")
    with pytest.raises(DataError, match=r"bad.dat: line 2"):
        tb.data.readers.read_ml1m_ratings(bad)


def test_offline_error_says_where_it_looked(isolated, monkeypatch):
    def offline(url, timeout=60.0):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(D, "_urlopen", offline)
    with pytest.raises(D.DatasetNotFoundError) as e:
        D.load("movielens-1m", data_dir=isolated / "mine")
    msg = str(e.value)
    assert str(isolated / "mine") in msg and str(isolated / "cache" / "ml-1m") in msg
    assert "TASTEBUD_DATA" in msg and "ratings.dat" in msg and "files.grouplens.org" in msg
    assert isinstance(e.value, FileNotFoundError)
    with pytest.raises(D.DatasetNotFoundError, match="download=False"):
        D.load("retail", download=False)


def test_unsafe_zip_rejected(isolated, monkeypatch):
    z = isolated / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("ml-100k/u.data", U_DATA)
        zf.writestr("ml-100k/../../escape.txt", "x")
    _patch_remote(monkeypatch, "movielens-100k", url=z.as_uri(), md5=_md5(z), members={})
    with pytest.raises(DataError, match="unsafe"):
        D.load("movielens-100k")
    assert not (isolated / "escape.txt").exists()


def test_malformed_local_files_name_file_and_line(isolated):
    d = isolated / "data" / "ml-latest-small"
    d.mkdir(parents=True)
    (d / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,2,4.0,100\n1,x,3.0,101\n")
    (d / "movies.csv").write_text("movieId,title,genres\n2,A (1999),Drama\n")
    with pytest.raises(DataError, match=r"ratings.csv: line 3: column 'movieId'"):
        D.load("movielens-latest-small", data_dir=isolated / "data", download=False)
