"""Shared fixtures. Real datasets come from $TASTEBUD_DATA (CI points it at ../shared/data);
tests that need them skip when it is not set."""

import os

# BLAS threads fighting numba's own threads make ALS-style kernels ~10x slower (GUIDE §6).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


def _data_root() -> Path | None:
    d = os.environ.get("TASTEBUD_DATA")
    return Path(d) if d and Path(d).is_dir() else None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    root = _data_root()
    if root is None:
        pytest.skip("TASTEBUD_DATA is not set to the datasets folder")
    return root


@pytest.fixture(scope="session")
def ml100k_dir(data_dir: Path) -> Path:
    p = data_dir / "ml-100k"
    if not (p / "u.data").exists():
        pytest.skip("ml-100k not found under TASTEBUD_DATA")
    return p


@pytest.fixture(scope="session")
def ml100k_u1(ml100k_dir: Path):
    """(full, train, test DataFrame) for the official fold u1, with shared id maps."""
    from tastebud import Interactions
    from tastebud.data.readers import read_ml100k_ratings

    full = Interactions.from_frame(read_ml100k_ratings(ml100k_dir / "u.data"), rating="rating", timestamp="timestamp")
    tr = read_ml100k_ratings(ml100k_dir / "u1.base")
    te = read_ml100k_ratings(ml100k_dir / "u1.test")
    train = Interactions.from_frame(tr, rating="rating", timestamp="timestamp", user_map=full.users, item_map=full.items)
    return full, train, te


@pytest.fixture(scope="session")
def ml_latest_small_holdout(data_dir: Path):
    """(train, test user ids, test item ids, test ratings): `tastebud evaluate`'s seeded 80/20
    holdout of ml-latest-small (the protocol of the defaults checks, issue #14 item 11)."""
    if not (data_dir / "ml-latest-small" / "ratings.csv").exists():
        pytest.skip("ml-latest-small not found under TASTEBUD_DATA")
    from tastebud import split
    from tastebud.data import datasets

    full = datasets.load("movielens-latest-small").interactions
    train, test = split.holdout(full, test_size=0.2, per_user=False, random_state=0)
    u, i, r, _ = test.coo()
    return train, test.users.ids[u], test.items.ids[i], r
