"""MultimodalModel ablation on MovieLens-100K (official folds u1..u5) and MovieLens latest-small.

Each modality is added in turn — ids only, + categorical/numeric, + multi-hot, + text (hashed
n-grams), + text (frozen MiniLM instead of hashed) — and reported with RMSE and fit seconds,
beside tastebud.FactorizationMachine (MCMC) on the same features (title words as a multi-hot
group, since an FM has no text encoder) and tastebud.MatrixFactorization on ids, in the same run.

    .venv/bin/python benchmarks/multimodal.py [--quick] [--json PATH] [--folds 1,2] [--skip-latest]

--quick: ML-100K fold u1 only, plus latest-small. Needs TASTEBUD_DATA (default ../shared/data).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tastebud.data.readers import read_ml100k_items, read_ml100k_ratings, read_ml100k_users  # noqa: E402
from tastebud.models.multimodal.model import MultimodalModel  # noqa: E402

ROOT = Path(os.environ.get("TASTEBUD_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

ML100K_STEPS = [
    ("ids only", {"user": "id", "item": "id"}, "hashed"),
    ("+ categorical/numeric", {"age": "numeric", "gender": "categorical", "occupation": "categorical",
                               "zip": "categorical", "year": "numeric", "timestamp": "numeric"}, "hashed"),
    ("+ multi-hot (genres)", {"genres": "multi_hot"}, "hashed"),
    ("+ text (hashed title)", {"title": "text"}, "hashed"),
    ("+ text (MiniLM title)", {"title": "text"}, "minilm"),
]
LATEST_STEPS = [
    ("ids only", {"user": "id", "item": "id"}, "hashed"),
    ("+ numeric (year, time)", {"year": "numeric", "timestamp": "numeric"}, "hashed"),
    ("+ multi-hot (genres)", {"genres": "multi_hot"}, "hashed"),
    ("+ text (hashed title, tags)", {"title": "text", "tags": "text"}, "hashed"),
    ("+ text (MiniLM title, tags)", {"title": "text", "tags": "text"}, "minilm"),
]


def rmse(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2)))


def title_words(titles: pd.Series) -> list[list[str]]:
    return [re.findall(r"[a-z0-9]+", str(t).lower()) for t in titles]


# ---------------------------------------------------------------------------- data
def ml100k_frames(fold: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    d = ROOT / "ml-100k"
    items = read_ml100k_items(d / "u.item").reset_index(drop=True)[["item", "title", "year", "genres"]]
    users = read_ml100k_users(d / "u.user").reset_index(drop=True)
    users["zip"] = users["zip"].astype(str).str[:2]  # zip prefix (region)

    def frame(name: str) -> pd.DataFrame:
        r = read_ml100k_ratings(d / name)
        return r.merge(users, on="user", how="left").merge(items, on="item", how="left")

    return frame(f"u{fold}.base"), frame(f"u{fold}.test")


def latest_frames(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    d = ROOT / "ml-latest-small"
    r = pd.read_csv(d / "ratings.csv").rename(columns={"userId": "user", "movieId": "item"})
    m = pd.read_csv(d / "movies.csv").rename(columns={"movieId": "item"})
    m["year"] = pd.to_numeric(m["title"].str.extract(r"\((\d{4})\)\s*$")[0], errors="coerce")
    m["genres"] = m["genres"].replace("(no genres listed)", "")
    tags = pd.read_csv(d / "tags.csv").rename(columns={"movieId": "item"})
    tags = tags.groupby("item")["tag"].apply(lambda s: " ".join(map(str, s))).rename("tags").reset_index()
    df = r.merge(m, on="item", how="left").merge(tags, on="item", how="left")
    df["tags"] = df["tags"].fillna("")
    rng = np.random.default_rng(seed)
    test = rng.random(len(df)) < 0.2
    return df[~test].reset_index(drop=True), df[test].reset_index(drop=True)


# ---------------------------------------------------------------------------- references
def run_mf(train: pd.DataFrame, test: pd.DataFrame) -> dict:
    try:
        from tastebud import MatrixFactorization
        from tastebud.data.interactions import Interactions
    except (ImportError, AttributeError) as e:
        return {"error": f"MatrixFactorization not importable: {e}"}
    t = time.perf_counter()
    inter = Interactions.from_frame(train, rating="rating")
    m = MatrixFactorization(random_state=0, num_threads=1).fit(inter)
    fit_s = time.perf_counter() - t
    return {"rmse": rmse(m.predict(test["user"].to_numpy(), test["item"].to_numpy()), test["rating"]), "fit_s": fit_s}


def run_fm(train: pd.DataFrame, test: pd.DataFrame, cat: list[str], num: list[str], multi: list[str], n_iter: int) -> dict:
    try:
        from tastebud import FactorizationMachine, FMFeatures
    except (ImportError, AttributeError) as e:
        return {"error": f"FactorizationMachine not importable: {e}"}
    t = time.perf_counter()
    fb = FMFeatures(categorical=cat, numeric=num, multi_hot=multi)
    X, groups = fb.fit_transform(train)
    fm = FactorizationMachine(factors=10, solver="mcmc", epochs=n_iter, random_state=0, num_threads=1).fit(X, train["rating"].to_numpy(), groups)
    fit_s = time.perf_counter() - t
    Xt, _ = fb.transform(test)
    pred = np.clip(fm.predict(Xt), train["rating"].min(), train["rating"].max())
    return {"rmse": rmse(pred, test["rating"]), "fit_s": fit_s}


# ---------------------------------------------------------------------------- ablation
def ablation(train: pd.DataFrame, test: pd.DataFrame, steps, params: dict, log) -> list[dict]:
    rows = []
    fields: dict[str, str] = {}
    for name, add, enc in steps:
        if enc == "minilm":
            try:
                from tastebud.models.multimodal.text_encoders import require_text_extra

                require_text_extra()
            except ImportError as e:
                rows.append({"config": name, "error": str(e)})
                continue
        fields = {**fields, **add}
        t = time.perf_counter()
        m = MultimodalModel(fields=fields, text_encoder=enc, **params).fit(train)
        fit_s = time.perf_counter() - t
        r = rmse(m.predict(test), test["rating"])
        rows.append({"config": name, "rmse": r, "fit_s": fit_s, "epochs": len(m.history_)})
        log(f"  {name:32s} rmse {r:.4f}  fit {fit_s:6.1f}s  epochs {len(m.history_)}")
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fold u1 only (+ latest-small)")
    ap.add_argument("--json", type=str, default=None, help="write results as JSON here")
    ap.add_argument("--folds", type=str, default=None, help="comma-separated ML-100K folds (default 1..5, quick: 1; 'none' skips ML-100K)")
    ap.add_argument("--skip-latest", action="store_true", help="skip MovieLens latest-small")
    ap.add_argument("--fm-iter", type=int, default=200, help="MCMC sweeps for the FactorizationMachine")
    args = ap.parse_args(argv)
    if not (ROOT / "ml-100k" / "u.data").exists():
        print(f"datasets not found under {ROOT}; set TASTEBUD_DATA", file=sys.stderr)
        return 2
    if args.folds == "none":
        folds: list[int] = []
    else:
        folds = [int(f) for f in args.folds.split(",")] if args.folds else ([1] if args.quick else [1, 2, 3, 4, 5])
    params = dict(random_state=0)
    log = lambda s: print(s, flush=True)  # noqa: E731
    out: dict = {"machine": f"{platform.node()} {os.cpu_count()} cores (shared, timings noisy)", "folds": folds,
                 "params": params, "ml100k": {}, "latest": None}
    for f in folds:
        log(f"ML-100K fold u{f}")
        tr, te = ml100k_frames(f)
        rows = ablation(tr, te, ML100K_STEPS, params, log)
        tr["title_words"], te["title_words"] = title_words(tr["title"]), title_words(te["title"])
        fm = run_fm(tr, te, ["user", "item", "gender", "occupation", "zip"], ["age", "year", "timestamp"],
                    ["genres", "title_words"], args.fm_iter)
        log(f"  {'FactorizationMachine (MCMC)':32s} {fm}")
        mf = run_mf(tr, te)
        log(f"  {'MatrixFactorization':32s} {mf}")
        out["ml100k"][f"u{f}"] = {"ablation": rows, "fm": fm, "mf": mf}
    if not args.skip_latest and (ROOT / "ml-latest-small" / "ratings.csv").exists():
        log("MovieLens latest-small (random 80/20 holdout, seed 0)")
        tr, te = latest_frames()
        rows = ablation(tr, te, LATEST_STEPS, params, log)
        for d in (tr, te):
            d["title_words"] = title_words(d["title"] + " " + d["tags"])
        fm = run_fm(tr, te, ["user", "item"], ["year", "timestamp"], ["genres", "title_words"], args.fm_iter)
        log(f"  {'FactorizationMachine (MCMC)':32s} {fm}")
        mf = run_mf(tr, te)
        log(f"  {'MatrixFactorization':32s} {mf}")
        out["latest"] = {"ablation": rows, "fm": fm, "mf": mf}
    if folds:
        summary(out, folds, log)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0


def summary(out: dict, folds: list[int], log) -> None:
    """Mean over folds of every row of the ablation and the two references."""
    log("\nML-100K, mean over folds " + ",".join(f"u{f}" for f in folds))
    log(f"{'model':34s} {'RMSE':>7s} {'fit s':>7s}")
    names = [s[0] for s in ML100K_STEPS]
    for j, name in enumerate(names):
        vals = [out["ml100k"][f"u{f}"]["ablation"][j] for f in folds]
        if any("error" in v for v in vals):
            log(f"{name:34s}  n/a ({vals[0].get('error', '')})")
            continue
        log(f"{'Multimodal ' + name:34s} {np.mean([v['rmse'] for v in vals]):7.4f} {np.mean([v['fit_s'] for v in vals]):7.1f}")
    for key, label in (("fm", "FactorizationMachine (MCMC)"), ("mf", "MatrixFactorization")):
        vals = [out["ml100k"][f"u{f}"][key] for f in folds]
        if any("error" in v for v in vals):
            log(f"{label:34s}  n/a ({vals[0]['error']})")
        else:
            log(f"{label:34s} {np.mean([v['rmse'] for v in vals]):7.4f} {np.mean([v['fit_s'] for v in vals]):7.1f}")


if __name__ == "__main__":
    sys.exit(main())
