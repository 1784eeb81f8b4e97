"""The dataset registry: ``load(name)``, ``names()``, ``info(name)``.

Where ``load`` looks, in order:

1. ``data_dir=`` when given (either a root folder holding ``<folder>/`` per dataset, or the dataset's
   own folder);
2. ``$TASTEBUD_DATA`` — a root folder with one sub-folder per dataset (``ml-100k/``,
   ``ml-latest-small/``, ``fimi/retail.dat``, ``groceries/groceries.csv``, ``mushroom/mushrooms.csv``,
   ``amazon-games/sequences.txt``, ``frappe/``, ``ml-1m/``);
3. the user cache, ``$TASTEBUD_CACHE`` or ``~/.cache/tastebud`` (same layout);
4. a download from the official source into the cache (``download=True``), verified by checksum
   before anything is extracted or parsed.

Checksums: every remote file carries at least one known digest. MovieLens archives carry the MD5 that
GroupLens publishes next to each archive (``ml-100k.zip.md5``...) and, where we could compute or
find one, a SHA-256. Files whose bytes we hold locally (the original copies in our data folder)
carry the SHA-256 of those bytes. Where a digest did not come from the publisher it says so in
``info(name)["checksum_source"]``. A mismatch raises :class:`ChecksumError` and leaves nothing in the
cache; ``verify=False`` skips the check (at your own risk).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..exceptions import DataError, TastebudError
from . import readers
from .baskets import Baskets
from .idmap import IdMap
from .interactions import Interactions
from .sequences import Sequences

logger = logging.getLogger("tastebud")

__all__ = ["Dataset", "load", "names", "info", "DatasetNotFoundError", "ChecksumError", "cache_dir"]


class DatasetNotFoundError(TastebudError, FileNotFoundError):
    """The dataset is not on disk and could not be downloaded (the message says where we looked)."""


class ChecksumError(DataError):
    """A downloaded file does not have the published checksum."""


@dataclass
class Dataset:
    """A loaded dataset. Fields that do not apply to a dataset are ``None`` (or empty)."""

    name: str
    path: Path
    interactions: Interactions | None = None
    baskets: Baskets | None = None
    sequences: Sequences | None = None
    users: pd.DataFrame | None = None
    items: pd.DataFrame | None = None
    files: dict[str, Path] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        parts = [f"name={self.name!r}", f"path={str(self.path)!r}"]
        for f in ("interactions", "baskets", "sequences"):
            v = getattr(self, f)
            if v is not None:
                parts.append(f"{f}={v!r}")
        for f in ("users", "items"):
            v = getattr(self, f)
            if v is not None:
                parts.append(f"{f}=<{len(v)} rows>")
        if self.files:
            parts.append(f"files={sorted(self.files)}")
        if self.extra:
            parts.append(f"extra={sorted(self.extra)}")
        return f"Dataset({', '.join(parts)})"


@dataclass(frozen=True)
class Remote:
    """One file to fetch. ``archive=True``: a zip whose top folder holds the dataset's files."""

    url: str
    filename: str
    sha256: str | None = None
    md5: str | None = None
    archive: bool = False
    #: sha256 of files after extraction (relative to the dataset folder)
    members: dict[str, str] = field(default_factory=dict)
    #: optional conversion after verification: (downloaded path, dataset folder) -> None
    convert: Callable[[Path, Path], None] | None = None


@dataclass(frozen=True)
class Spec:
    name: str
    folder: str
    required: tuple[str, ...]
    description: str
    loader: Callable[[Path], Dataset]
    remotes: tuple[Remote, ...]
    homepage: str
    license: str
    checksum_source: str
    in_shared_folder: bool = True


# ---------------------------------------------------------------------- loaders
def _load_ml100k(path: Path) -> Dataset:
    ratings = readers.read_ml100k_ratings(path / "u.data")
    inter = Interactions.from_frame(ratings, rating="rating", timestamp="timestamp", duplicates="raise",
                                    source=str(path / "u.data"))
    users = readers.read_ml100k_users(path / "u.user")
    items = readers.read_ml100k_items(path / "u.item")
    items = items[["item", "title", "release_date", "year", "url", "genres"]]
    files = {p.name: p for p in sorted(path.iterdir()) if p.is_file()}
    return Dataset("movielens-100k", path, interactions=inter, users=users, items=items, files=files,
                   extra={"genres": list(readers.ML100K_GENRES)})


def _load_ml_latest_small(path: Path) -> Dataset:
    ratings = readers.read_ml_latest_ratings(path / "ratings.csv")
    inter = Interactions.from_frame(ratings, rating="rating", timestamp="timestamp", duplicates="raise",
                                    source=str(path / "ratings.csv"))
    items = readers.read_ml_latest_movies(path / "movies.csv")
    extra: dict[str, Any] = {}
    if (path / "tags.csv").exists():
        extra["tags"] = readers.read_ml_latest_tags(path / "tags.csv")
    if (path / "links.csv").exists():
        extra["links"] = readers.read_ml_latest_links(path / "links.csv")
    files = {p.name: p for p in sorted(path.iterdir()) if p.is_file()}
    return Dataset("movielens-latest-small", path, interactions=inter, items=items, files=files, extra=extra)


def _load_ml1m(path: Path) -> Dataset:
    ratings = readers.read_ml1m_ratings(path / "ratings.dat")
    inter = Interactions.from_frame(ratings, rating="rating", timestamp="timestamp", duplicates="raise",
                                    source=str(path / "ratings.dat"))
    users = readers.read_ml1m_users(path / "users.dat") if (path / "users.dat").exists() else None
    items = readers.read_ml1m_movies(path / "movies.dat") if (path / "movies.dat").exists() else None
    files = {p.name: p for p in sorted(path.iterdir()) if p.is_file()}
    return Dataset("movielens-1m", path, interactions=inter, users=users, items=items, files=files)


def _load_groceries(path: Path) -> Dataset:
    f = path / "groceries.csv"
    return Dataset("groceries", path, baskets=Baskets.from_file(f, sep=","), files={"groceries.csv": f})


def _load_retail(path: Path) -> Dataset:
    f = path / "retail.dat"
    return Dataset("retail", path, baskets=Baskets.from_file(f), files={"retail.dat": f})


def _load_mushroom(path: Path) -> Dataset:
    f = path / "mushrooms.csv"
    cols, vals = readers.read_mushroom_baskets(f)
    imap, codes = IdMap.from_values(vals.ravel().astype(str), "item")
    import scipy.sparse as sp

    n, m = vals.shape
    mat = sp.csr_matrix((np.ones(n * m, dtype=np.uint8), codes, np.arange(0, n * m + 1, m)), shape=(n, len(imap)))
    mat.sort_indices()
    return Dataset("mushroom", path, baskets=Baskets.from_matrix(mat, imap), files={"mushrooms.csv": f},
                   extra={"columns": cols})


def _load_amazon_games(path: Path) -> Dataset:
    f = path / "sequences.txt"
    return Dataset("amazon-games", path, sequences=Sequences.from_file(f), files={"sequences.txt": f})


def _load_frappe(path: Path) -> Dataset:
    files = {p.name: p for p in sorted(path.iterdir()) if p.is_file()}
    train = path / "frappe.train.libfm"
    # the data folder ships no train file: its README says to train on validation and test on test
    files["train"] = path / "frappe.validation.libfm"
    files["validation"] = path / "frappe.validation.libfm"
    files["test"] = path / "frappe.test.libfm"
    if train.exists():
        files["full_train"] = train
    return Dataset("frappe", path, files=files,
                   extra={"note": "libFM format; files['train'] is frappe.validation.libfm (the release's "
                                  "train file is not shipped here); read it with tastebud.data.libfm"})


def _mushroom_from_uci(src: Path, folder: Path) -> None:
    """UCI ``agaricus-lepiota.data`` (no header, class first) → ``mushrooms.csv`` with our header."""
    header = ",".join(MUSHROOM_COLUMNS)
    with open(src, encoding="ascii") as f:
        body = f.read()
    tmp = folder / "mushrooms.csv.part"
    tmp.write_text(header + "\n" + body, encoding="ascii")
    tmp.replace(folder / "mushrooms.csv")


MUSHROOM_COLUMNS = [
    "type", "cap_shape", "cap_surface", "cap_color", "bruises", "odor", "gill_attachment", "gill_spacing",
    "gill_size", "gill_color", "stalk_shape", "stalk_root", "stalk_surface_above_ring",
    "stalk_surface_below_ring", "stalk_color_above_ring", "stalk_color_below_ring", "veil_type", "veil_color",
    "ring_number", "ring_type", "spore_print_color", "population", "habitat",
]

_ML = "https://files.grouplens.org/datasets/movielens/"
_NFM = "https://raw.githubusercontent.com/hexiangnan/neural_factorization_machine/master/data/frappe/"

# SHA-256 of the original ML-100K files (computed from an original copy; GroupLens publishes only the
# archive's MD5). Checked after extraction.
_ML100K_MEMBERS = {
    "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
    "u1.base": "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
    "u1.test": "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950",
    "u2.base": "6c06f0b5df4b256da1a994f3ac66edc8da4d3f09bc9282df6b14d893366d703e",
    "u2.test": "4de658d1e04ed9104629509a2e2528fce833ac8e048280183f1df167632038c3",
    "u3.base": "afdc155c291c6edc41c0407e39d7462eb98d341e064f0b0a12175b80b3c4af5d",
    "u3.test": "0f548b51c78327de4c156461d3e430b7e5579fe2b5681586a59416e48fd35f6d",
    "u4.base": "219f0f4d40dfe9c5141d425f53fa91ee23ed275f14e280bbf1b50117afb064ca",
    "u4.test": "7c02ad0a1e7ab1083c8b9d4b627203a051dd7b5eab46d99fa44de33470de8db9",
    "u5.base": "a9574e59ce961eec2121627760b6e9b0974ce1637b3fe69ac32cb14a4bfab485",
    "u5.test": "351cc52e0d15b6c721466276fc24671d40936899e3d01fadeaf312915b8c5634",
}

_SPECS: dict[str, Spec] = {}


def _register(spec: Spec) -> None:
    _SPECS[spec.name] = spec


_register(Spec(
    "movielens-100k", "ml-100k", ("u.data", "u.user", "u.item"),
    "MovieLens 100K: 100,000 ratings (1-5) by 943 users on 1,682 movies, with timestamps, user "
    "demographics, movie titles and genres, and the official folds u1..u5, ua, ub.",
    _load_ml100k,
    (Remote(_ML + "ml-100k.zip", "ml-100k.zip", md5="0e33842e24a9c977be4e0107933c0723", archive=True,
            members=_ML100K_MEMBERS),),
    "https://grouplens.org/datasets/movielens/100k/", "GroupLens research licence (see README; no redistribution)",
    "archive MD5 as published by GroupLens (ml-100k.zip.md5); member SHA-256 computed from an original copy",
))
_register(Spec(
    "movielens-latest-small", "ml-latest-small", ("ratings.csv", "movies.csv"),
    "MovieLens latest-small: 100,836 ratings (0.5-5 stars) by 610 users on 9,742 movies, 3,683 tags.",
    _load_ml_latest_small,
    (Remote(_ML + "ml-latest-small.zip", "ml-latest-small.zip",
            sha256="696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436", archive=True),),
    "https://grouplens.org/datasets/movielens/latest/", "GroupLens research licence (see README.txt)",
    "archive SHA-256 as recorded by a third party (a public dataset card); not re-verified here (no network)",
))
_register(Spec(
    "movielens-1m", "ml-1m", ("ratings.dat",),
    "MovieLens 1M: 1,000,209 ratings by 6,040 users on 3,706 movies, with user demographics and genres.",
    _load_ml1m,
    (Remote(_ML + "ml-1m.zip", "ml-1m.zip", md5="c4d9eecfca2ab87c1945afe126590906", archive=True),),
    "https://grouplens.org/datasets/movielens/1m/", "GroupLens research licence (see README)",
    "archive MD5 as published by GroupLens (ml-1m.zip.md5)",
    in_shared_folder=False,
))
_register(Spec(
    "groceries", "groceries", ("groceries.csv",),
    "Groceries: 9,835 point-of-sale baskets over 169 items (R arules), one basket per line, comma-separated.",
    _load_groceries,
    (Remote("https://raw.githubusercontent.com/stedy/Machine-Learning-with-R-datasets/master/groceries.csv",
            "groceries.csv", sha256="ff1be892fd6b9b57d1a7bc50de067798963dda607619645988b21789bf23ae3b"),),
    "https://cran.r-project.org/package=arules", "GPL (as distributed with R's arules)",
    "SHA-256 of the copy in our shared data folder (matches the published sizes); not re-verified online",
))
_register(Spec(
    "retail", "fimi", ("retail.dat",),
    "FIMI 'retail': 88,162 anonymised Belgian supermarket baskets over 16,470 items (Brijs et al.).",
    _load_retail,
    (Remote("http://fimi.uantwerpen.be/data/retail.dat", "retail.dat",
            sha256="d967431ba522e32f0fbb243f2ee113ecd4cb374cb0234c1b0858dae1d499a055"),),
    "http://fimi.uantwerpen.be/data/", "free for research (FIMI repository)",
    "SHA-256 of the copy in our shared data folder (matches the published sizes); not re-verified online",
))
_register(Spec(
    "mushroom", "mushroom", ("mushrooms.csv",),
    "UCI Mushroom: 8,124 rows of 22 categorical attributes + class; as baskets, 23 'column=value' items per row.",
    _load_mushroom,
    (Remote("https://archive.ics.uci.edu/ml/machine-learning-databases/mushroom/agaricus-lepiota.data",
            "agaricus-lepiota.data",
            sha256="e65d082030501a3ebcbcd7c9f7c71aa9d28fdfff463bf4cf4716a3fe13ac360e",
            convert=_mushroom_from_uci),),
    "https://archive.ics.uci.edu/dataset/73/mushroom", "CC BY 4.0 (UCI)",
    "SHA-256 reconstructed as our mushrooms.csv minus its header line (which is how the UCI file "
    "relates to it); not re-verified online",
))
_register(Spec(
    "amazon-games", "amazon-games", ("sequences.txt",),
    "Amazon Video Games as used by the SASRec paper: 287,107 interactions, 31,013 users, 23,715 items; "
    "lines 'user item' in time order.",
    _load_amazon_games,
    (Remote("https://raw.githubusercontent.com/kang205/SASRec/master/data/Video.txt", "sequences.txt",
            sha256="b7376fe24430743f411dc7f567285657b2adb3f74361cc7ba0aee94f3024b651"),),
    "https://github.com/kang205/SASRec", "Amazon review data (McAuley et al.), research use",
    "SHA-256 of the copy in our shared data folder (same size and first lines as SASRec's data/Video.txt)",
))
_register(Spec(
    "frappe", "frappe", ("frappe.validation.libfm", "frappe.test.libfm"),
    "frappe context-aware app usage in libFM format (Neural FM release): 57,721 (validation, used for "
    "training) + 28,860 (test) rows, 10 one-hot fields, labels -1/1. Only file paths are returned.",
    _load_frappe,
    (Remote(_NFM + "frappe.validation.libfm", "frappe.validation.libfm",
            sha256="fdf4be563a7dd9b15f7a6e8b32671e90e6e7a2a2bd3af4e10bf13c5ad7e76e9e"),
     Remote(_NFM + "frappe.test.libfm", "frappe.test.libfm",
            sha256="a2ebaef3a9af8e55f8bb0d08bc4923965e42e43760ebd7635ac2f8c5db99e097")),
    "https://github.com/hexiangnan/neural_factorization_machine", "research use (see frappe README)",
    "SHA-256 of the copies in our shared data folder; not re-verified online",
))


# ---------------------------------------------------------------------- public API
def names() -> list[str]:
    """Names of the registered datasets."""
    return sorted(_SPECS)


def _spec(name: str) -> Spec:
    try:
        return _SPECS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(names())}") from None


def cache_dir() -> Path:
    """``$TASTEBUD_CACHE`` or ``~/.cache/tastebud``."""
    env = os.environ.get("TASTEBUD_CACHE")
    return Path(env).expanduser() if env else Path("~/.cache/tastebud").expanduser()


def _candidates(spec: Spec, data_dir: str | os.PathLike | None) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        out += [("data_dir", d / spec.folder), ("data_dir", d)]
    env = os.environ.get("TASTEBUD_DATA")
    if env:
        out.append(("$TASTEBUD_DATA", Path(env).expanduser() / spec.folder))
    out.append(("cache", cache_dir() / spec.folder))
    return out


def _complete(folder: Path, spec: Spec) -> bool:
    return all((folder / r).is_file() for r in spec.required)


def find(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The local folder holding dataset ``name``, or ``None``."""
    spec = _spec(name)
    for _, folder in _candidates(spec, data_dir):
        if _complete(folder, spec):
            return folder
    return None


def info(name: str, data_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """What we know about ``name``: description, homepage, licence, sources and checksums, local path."""
    spec = _spec(name)
    local = find(name, data_dir)
    return {
        "name": spec.name,
        "description": spec.description,
        "homepage": spec.homepage,
        "license": spec.license,
        "folder": spec.folder,
        "required_files": list(spec.required),
        "sources": [{"url": r.url, "sha256": r.sha256, "md5": r.md5, "members_sha256": dict(r.members)}
                    for r in spec.remotes],
        "checksum_source": spec.checksum_source,
        "in_shared_data_folder": spec.in_shared_folder,
        "local_path": str(local) if local else None,
    }


def load(name: str, *, data_dir: str | os.PathLike | None = None, download: bool = True,
         verify: bool = True) -> Dataset:
    """Load dataset ``name`` (see :func:`names`) from disk, downloading it into the cache if needed.

    Raises :class:`DatasetNotFoundError` (listing every place looked at and how to provide the files)
    when it is not on disk and cannot be downloaded, and :class:`ChecksumError` when a download does
    not match its checksum.
    """
    spec = _spec(name)
    folder = find(name, data_dir)
    if folder is None:
        looked = "\n".join(f"  - {where}: {p}" for where, p in _candidates(spec, data_dir))
        if not os.environ.get("TASTEBUD_DATA") and data_dir is None:
            looked += "\n  - $TASTEBUD_DATA: (not set)"
        need = ", ".join(spec.required)
        howto = (f"Provide the files by putting {need} in a folder '{spec.folder}/' under $TASTEBUD_DATA "
                 f"(or under {cache_dir()}), or pass data_dir=; sources: "
                 + ", ".join(r.url for r in spec.remotes))
        if not download:
            raise DatasetNotFoundError(f"dataset {name!r} not found (download=False). Looked in:\n{looked}\n{howto}")
        target = cache_dir() / spec.folder
        try:
            _download(spec, target, verify=verify)
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            raise DatasetNotFoundError(
                f"dataset {name!r} not found locally and the download failed ({e}). Looked in:\n{looked}\n{howto}"
            ) from e
        folder = target
    logger.info("loading dataset %s from %s", name, folder)
    return spec.loader(folder)


# ---------------------------------------------------------------------- downloading
def _urlopen(url: str, timeout: float = 60.0):  # separate so tests can replace it
    return urllib.request.urlopen(url, timeout=timeout)


def _fetch(url: str, dest: Path) -> tuple[str, str]:
    """Stream ``url`` to ``dest``; return (sha256, md5) of the bytes."""
    h256, h5 = hashlib.sha256(), hashlib.md5()
    logger.info("downloading %s", url)
    with _urlopen(url) as r, open(dest, "wb") as f:
        while True:
            chunk = r.read(1 << 20)
            if not chunk:
                break
            h256.update(chunk)
            h5.update(chunk)
            f.write(chunk)
    return h256.hexdigest(), h5.hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify(remote: Remote, sha: str, md5: str, verify: bool) -> None:
    if not verify:
        return
    if remote.sha256 is None and remote.md5 is None and not remote.members:
        raise ChecksumError(f"{remote.url}: no known checksum; refusing to use it (pass verify=False to accept)")
    if remote.sha256 is not None and sha != remote.sha256:
        raise ChecksumError(f"{remote.url}: SHA-256 mismatch: expected {remote.sha256}, got {sha} "
                            "(corrupt or changed download; nothing was kept)")
    if remote.md5 is not None and md5 != remote.md5:
        raise ChecksumError(f"{remote.url}: MD5 mismatch: expected {remote.md5} (published), got {md5} "
                            "(corrupt or changed download; nothing was kept)")


def _extract(zpath: Path, dest: Path) -> None:
    """Extract a zip whose members sit under one top folder (``ml-100k/...``) into ``dest`` (flattened
    by that one level), refusing absolute paths and ``..``."""
    with zipfile.ZipFile(zpath) as z:
        names_ = [n for n in z.namelist() if not n.endswith("/")]
        tops = {n.split("/", 1)[0] for n in names_ if "/" in n}
        strip = len(tops) == 1 and all("/" in n for n in names_)
        for n in names_:
            rel = n.split("/", 1)[1] if strip else n
            parts = Path(rel).parts
            if Path(rel).is_absolute() or ".." in parts or not parts:
                raise DataError(f"{zpath}: unsafe member path {n!r} in archive")
            out = dest.joinpath(*parts)
            out.parent.mkdir(parents=True, exist_ok=True)
            with z.open(n) as src, open(out, "wb") as f:
                shutil.copyfileobj(src, f)


def _download(spec: Spec, target: Path, verify: bool = True) -> None:
    """Fetch every remote of ``spec`` into a temporary folder, verify, then move it to ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.folder}.", dir=target.parent))
    try:
        stage = tmp / "data"
        stage.mkdir()
        for r in spec.remotes:
            raw = tmp / r.filename
            sha, md5 = _fetch(r.url, raw)
            _verify(r, sha, md5, verify)
            logger.info("%s: sha256 %s", r.url, sha)
            if r.archive:
                try:
                    _extract(raw, stage)
                except zipfile.BadZipFile as e:
                    raise DataError(f"{r.url}: not a valid zip archive: {e}") from e
                raw.unlink()
            elif r.convert is not None:
                r.convert(raw, stage)
            else:
                raw.replace(stage / r.filename)
            if verify:
                for rel, want in r.members.items():
                    p = stage / rel
                    if not p.is_file():
                        raise ChecksumError(f"{r.url}: expected file {rel!r} is missing from the download")
                    got = sha256_file(p)
                    if got != want:
                        raise ChecksumError(f"{r.url}: SHA-256 mismatch for {rel}: expected {want}, got {got}")
        missing = [q for q in spec.required if not (stage / q).is_file()]
        if missing:
            raise DataError(f"download of {spec.name!r} lacks the expected files {missing}")
        if target.exists():
            shutil.rmtree(target)
        stage.replace(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
