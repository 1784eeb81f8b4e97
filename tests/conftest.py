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
def zoo(tmp_path_factory):
    """(data, {registry name: path of a small saved model}) for every registered model whose
    extras are installed (see tests/_model_zoo.py)."""
    import _model_zoo as Z
    from tastebud.models import registry

    data = Z.datasets()
    out = tmp_path_factory.mktemp("zoo")
    files = {}
    for name in registry.names():
        if not registry.available(name):
            continue
        files[name] = Path(Z.make(name, data).save(out / f"{name}.tbm"))
    return data, files


@pytest.fixture(scope="session")
def served_root(tmp_path_factory) -> Path:
    """A folder of small real models (als.tb, bpr/1.tb, rules.tb) with items.csv and ratings.csv,
    built once per run for the service tests (tests/serving_helpers.py). Tests that change the
    folder work on a copy."""
    from serving_helpers import build_folder

    root = tmp_path_factory.mktemp("served")
    build_folder(root)
    return root


CHROMIUM = os.environ.get("TASTEBUD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium per test run: Debian's /usr/bin/chromium (installed by `make test`)
    driven by Playwright, which never downloads a browser of its own here."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium not found at {CHROMIUM} (`make test` installs Debian's chromium)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield b
        b.close()


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
