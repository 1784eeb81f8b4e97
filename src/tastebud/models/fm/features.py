"""``FMFeatures``: build a sparse factorization-machine design matrix from a DataFrame.

One row of the input frame is one example (e.g. one rating with its user's and item's side
columns already joined). Each configured column becomes one *feature group* (a contiguous
block of columns of the output matrix):

* ``categorical`` — one-hot (user, item, occupation, ...); categories unseen at fit → all-zero
  block (the FM then predicts without that group), missing values likewise;
* ``numeric`` — one column, standardised with the fit mean/std (missing → 0, i.e. the mean);
* ``multi_hot`` — list-like cells (or ``sep``-separated strings), each present value weighted
  1/|values| so the block sums to 1 (libFM/myFM's normalised genres);
* ``implicit`` — pairs ``(key, value)``: for a row with key ``k`` the block holds every value
  seen with ``k`` in the fit frame, each weighted 1/√|N(k)|. ``("user", "item")`` is "all items
  the user rated": with user and item one-hot it turns an FM into SVD++ (Rendle 2012, §5.2);
  ``("item", "user")`` is its mirror image. Unseen keys → empty block;
* ``time`` — a timestamp column: a standardised numeric feature plus a one-hot of
  ``n_time_bins`` quantile bins (time-aware bias, as in timeSVD's item-bin bias).

``transform`` returns ``(X, groups)``: a CSR float64 matrix and one group id per column
(``group_names_[g]`` names group g). The fitted vocabularies and scalings are plain JSON
(``to_dict``/``from_dict``, ``save``/``load``) and are saved with a factorization machine that
uses the builder.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ...data._frames import to_pandas
from ...exceptions import DataError, NotFittedError


def _listlike(v: Any) -> bool:
    return isinstance(v, (list, tuple, set, frozenset, np.ndarray))


def _key(v: Any) -> str:
    """Vocabulary key of a category value (JSON-safe; ints and their strings coincide on purpose:
    a vocabulary is rebuilt from JSON as strings)."""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        v = int(v)
    return str(v)


class FMFeatures:
    """Feature builder for factorization machines (see the module docstring).

    Parameters
    ----------
    categorical, numeric, multi_hot : column names
    implicit : sequence of ``(key_column, value_column)`` pairs
    time : name of a timestamp column (numbers or datetimes), or None
    n_time_bins : quantile bins for ``time``
    sep : separator for multi-hot cells given as strings (e.g. ``"Action|Comedy"``)
    min_count : categories (and multi-hot/implicit values) seen fewer times at fit are dropped
    """

    def __init__(
        self,
        categorical: Sequence[str] = (),
        numeric: Sequence[str] = (),
        multi_hot: Sequence[str] = (),
        implicit: Sequence[tuple[str, str]] = (),
        time: str | None = None,
        n_time_bins: int = 20,
        sep: str = "|",
        min_count: int = 1,
    ):
        self.categorical = list(categorical)
        self.numeric = list(numeric)
        self.multi_hot = list(multi_hot)
        self.implicit = [tuple(p) for p in implicit]
        self.time = time
        self.n_time_bins = int(n_time_bins)
        self.sep = sep
        self.min_count = int(min_count)
        for pair in self.implicit:
            if len(pair) != 2:
                raise ValueError(f"implicit entries must be (key_column, value_column) pairs, got {pair!r}")
        if self.n_time_bins < 1:
            raise ValueError(f"n_time_bins must be >= 1, got {n_time_bins!r}")
        self.state_: dict[str, Any] | None = None

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def infer(cls, df: Any, exclude: Iterable[str] = (), **kw: Any) -> "FMFeatures":
        """A builder with column kinds inferred from dtypes: numbers → numeric, list-like cells →
        multi-hot, everything else (strings, categories, booleans) → categorical."""
        pdf = to_pandas(df, "features")
        cat, num, mh = [], [], []
        skip = set(exclude)
        for c in pdf.columns:
            if c in skip:
                continue
            s = pdf[c]
            if pd.api.types.is_bool_dtype(s):
                cat.append(c)
            elif pd.api.types.is_numeric_dtype(s):
                num.append(c)
            else:
                first = next((v for v in s.tolist() if v is not None and not (isinstance(v, float) and np.isnan(v))), None)
                (mh if _listlike(first) else cat).append(c)
        return cls(categorical=cat, numeric=num, multi_hot=mh, **kw)

    def _columns(self) -> list[str]:
        cols = [*self.categorical, *self.numeric, *self.multi_hot]
        for k, v in self.implicit:
            cols += [k, v]
        if self.time is not None:
            cols.append(self.time)
        return list(dict.fromkeys(cols))

    def _frame(self, df: Any) -> pd.DataFrame:
        pdf = to_pandas(df, "features")
        missing = [c for c in self._columns() if c not in pdf.columns]
        if missing:
            raise DataError(f"FMFeatures: column(s) {missing} not in the frame (columns: {list(pdf.columns)})")
        if len(pdf) == 0:
            raise DataError("FMFeatures: the frame has no rows")
        return pdf

    def _values(self, cell: Any) -> list[str]:
        if cell is None or (isinstance(cell, float) and np.isnan(cell)):
            return []
        if isinstance(cell, str):
            return [t for t in cell.split(self.sep) if t != ""]
        if _listlike(cell):
            return [_key(v) for v in cell]
        return [_key(cell)]

    @staticmethod
    def _time_values(s: pd.Series, col: str) -> np.ndarray:
        if pd.api.types.is_datetime64_any_dtype(s):
            t = s.astype("datetime64[ns]").astype(np.int64).to_numpy(dtype=np.float64) / 1e9
            t[s.isna().to_numpy()] = np.nan
            return t
        t = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isnan(t) & s.notna().to_numpy()
        if bad.any():
            raise DataError(f"FMFeatures: time column {col!r} has a non-numeric value at row {int(np.flatnonzero(bad)[0])}")
        return t

    # ------------------------------------------------------------------ fit / transform
    def fit(self, df: Any) -> "FMFeatures":
        """Learn vocabularies, scalings, implicit neighbourhoods and time bins from ``df``."""
        pdf = self._frame(df)
        st: dict[str, Any] = {"groups": []}
        for c in self.categorical:
            vals = pdf[c]
            keys = pd.Series([_key(v) for v in vals[vals.notna()].tolist()], dtype=object)
            counts = keys.value_counts(sort=False)
            vocab = [k for k in pd.unique(keys) if counts[k] >= self.min_count]
            st["groups"].append({"kind": "categorical", "column": c, "vocab": vocab})
        for c in self.numeric:
            x = pd.to_numeric(pdf[c], errors="coerce").to_numpy(dtype=np.float64)
            bad = np.isnan(x) & pdf[c].notna().to_numpy()
            if bad.any():
                raise DataError(f"FMFeatures: numeric column {c!r} has a non-numeric value at row {int(np.flatnonzero(bad)[0])}")
            if np.isinf(x).any():
                raise DataError(f"FMFeatures: numeric column {c!r} has an infinite value at row {int(np.flatnonzero(np.isinf(x))[0])}")
            ok = x[~np.isnan(x)]
            mean = float(ok.mean()) if len(ok) else 0.0
            std = float(ok.std()) if len(ok) else 1.0
            st["groups"].append({"kind": "numeric", "column": c, "mean": mean, "std": std if std > 0 else 1.0})
        for c in self.multi_hot:
            counts: dict[str, int] = {}
            for cell in pdf[c].tolist():
                for v in set(self._values(cell)):
                    counts[v] = counts.get(v, 0) + 1
            vocab = [v for v, n in counts.items() if n >= self.min_count]
            st["groups"].append({"kind": "multi_hot", "column": c, "vocab": vocab})
        for key, val in self.implicit:
            kk = [_key(v) for v in pdf[key].tolist()]
            vv = [_key(v) for v in pdf[val].tolist()]
            pairs = pd.DataFrame({"k": kk, "v": vv}).drop_duplicates()
            vcount = pairs["v"].value_counts(sort=False)
            vocab = [v for v in pd.unique(pairs["v"]) if vcount[v] >= self.min_count]
            vpos = {v: j for j, v in enumerate(vocab)}
            pairs = pairs[pairs["v"].isin(vpos)]
            neigh = {k: sorted(vpos[v] for v in g["v"]) for k, g in pairs.groupby("k", sort=False)}
            st["groups"].append({"kind": "implicit", "column": key, "value_column": val, "vocab": vocab, "neighbours": neigh})
        if self.time is not None:
            t = self._time_values(pdf[self.time], self.time)
            ok = t[~np.isnan(t)]
            if len(ok) == 0:
                raise DataError(f"FMFeatures: time column {self.time!r} has no values")
            edges = np.unique(np.quantile(ok, np.linspace(0, 1, self.n_time_bins + 1)[1:-1])) if self.n_time_bins > 1 else np.empty(0)
            std = float(ok.std())
            st["groups"].append({"kind": "time", "column": self.time, "mean": float(ok.mean()),
                                 "std": std if std > 0 else 1.0})
            st["groups"].append({"kind": "time_bin", "column": self.time, "edges": edges.tolist()})
        self.state_ = st
        return self

    def _check_fitted(self) -> None:
        if self.state_ is None:
            raise NotFittedError("FMFeatures is not fitted yet; call fit() first")

    @property
    def group_names_(self) -> list[str]:
        self._check_fitted()
        out = []
        for g in self.state_["groups"]:
            if g["kind"] == "implicit":
                out.append(f"implicit:{g['column']}->{g['value_column']}")
            elif g["kind"] == "time_bin":
                out.append(f"{g['column']}:bin")
            else:
                out.append(g["column"])
        return out

    def group_sizes(self) -> list[int]:
        """Number of columns of each group (contiguous, in order)."""
        self._check_fitted()
        sizes = []
        for g in self.state_["groups"]:
            if g["kind"] in ("numeric", "time"):
                sizes.append(1)
            elif g["kind"] == "time_bin":
                sizes.append(len(g["edges"]) + 1)
            else:
                sizes.append(len(g["vocab"]))
        return sizes

    @property
    def n_features_(self) -> int:
        return int(sum(self.group_sizes()))

    @property
    def feature_names_(self) -> list[str]:
        names = []
        for g, gname in zip(self.state_ and self.state_["groups"] or [], self.group_names_):
            if g["kind"] in ("numeric", "time"):
                names.append(gname)
            elif g["kind"] == "time_bin":
                names += [f"{gname}={b}" for b in range(len(g["edges"]) + 1)]
            else:
                names += [f"{gname}={v}" for v in g["vocab"]]
        return names

    def transform(self, df: Any) -> tuple[sp.csr_matrix, np.ndarray]:
        """``(X, groups)``: CSR float64 (len(df) × n_features_) and the group id of each column."""
        self._check_fitted()
        pdf = self._frame(df)
        n = len(pdf)
        rows_l, cols_l, vals_l = [], [], []
        offset = 0
        sizes = self.group_sizes()
        for g, size in zip(self.state_["groups"], sizes):
            kind = g["kind"]
            col = pdf[g["column"]]
            if kind == "categorical":
                pos = {v: j for j, v in enumerate(g["vocab"])}
                codes = np.array([-1 if (v is None or (isinstance(v, float) and np.isnan(v))) else pos.get(_key(v), -1)
                                  for v in col.tolist()], dtype=np.int64)
                r = np.flatnonzero(codes >= 0)
                rows_l.append(r)
                cols_l.append(codes[r] + offset)
                vals_l.append(np.ones(len(r)))
            elif kind in ("numeric", "time"):
                x = (self._time_values(col, g["column"]) if kind == "time"
                     else pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64))
                if kind == "numeric":
                    bad = np.isnan(x) & col.notna().to_numpy()
                    if bad.any():
                        raise DataError(f"FMFeatures: numeric column {g['column']!r} has a non-numeric value at row {int(np.flatnonzero(bad)[0])}")
                z = (x - g["mean"]) / g["std"]
                z[~np.isfinite(z)] = 0.0
                r = np.flatnonzero(z != 0)
                rows_l.append(r)
                cols_l.append(np.full(len(r), offset))
                vals_l.append(z[r])
            elif kind == "time_bin":
                x = self._time_values(col, g["column"])
                b = np.searchsorted(np.asarray(g["edges"], dtype=np.float64), x, side="right")
                r = np.flatnonzero(~np.isnan(x))
                rows_l.append(r)
                cols_l.append(b[r] + offset)
                vals_l.append(np.ones(len(r)))
            elif kind == "multi_hot":
                pos = {v: j for j, v in enumerate(g["vocab"])}
                rr, cc, vv = [], [], []
                for ri, cell in enumerate(col.tolist()):
                    js = sorted({pos[v] for v in self._values(cell) if v in pos})
                    if js:
                        rr += [ri] * len(js)
                        cc += js
                        vv += [1.0 / len(js)] * len(js)
                rows_l.append(np.asarray(rr, dtype=np.int64))
                cols_l.append(np.asarray(cc, dtype=np.int64) + offset)
                vals_l.append(np.asarray(vv, dtype=np.float64))
            elif kind == "implicit":
                neigh = g["neighbours"]
                rr, cc, vv = [], [], []
                for ri, key in enumerate(col.tolist()):
                    js = neigh.get(_key(key)) if key is not None else None
                    if js:
                        rr.append(np.full(len(js), ri, dtype=np.int64))
                        cc.append(np.asarray(js, dtype=np.int64))
                        vv.append(np.full(len(js), 1.0 / np.sqrt(len(js))))
                rows_l.append(np.concatenate(rr) if rr else np.empty(0, np.int64))
                cols_l.append((np.concatenate(cc) if cc else np.empty(0, np.int64)) + offset)
                vals_l.append(np.concatenate(vv) if vv else np.empty(0))
            offset += size
        rows = np.concatenate(rows_l) if rows_l else np.empty(0, np.int64)
        cols = np.concatenate(cols_l) if cols_l else np.empty(0, np.int64)
        vals = np.concatenate(vals_l) if vals_l else np.empty(0)
        X = sp.csr_matrix((vals, (rows, cols)), shape=(n, offset))
        X.sort_indices()
        groups = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
        return X, groups

    def fit_transform(self, df: Any) -> tuple[sp.csr_matrix, np.ndarray]:
        return self.fit(df).transform(df)

    # ------------------------------------------------------------------ persistence (JSON)
    def to_dict(self) -> dict[str, Any]:
        return {"params": {"categorical": self.categorical, "numeric": self.numeric, "multi_hot": self.multi_hot,
                           "implicit": [list(p) for p in self.implicit], "time": self.time,
                           "n_time_bins": self.n_time_bins, "sep": self.sep, "min_count": self.min_count},
                "state": self.state_}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FMFeatures":
        p = dict(d["params"])
        p["implicit"] = [tuple(x) for x in p.get("implicit", [])]
        obj = cls(**p)
        obj.state_ = d.get("state")
        return obj

    def save(self, path: str | os.PathLike) -> None:
        self._check_fitted()
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FMFeatures":
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh))

    def __repr__(self) -> str:
        return (f"FMFeatures(categorical={self.categorical}, numeric={self.numeric}, multi_hot={self.multi_hot}, "
                f"implicit={self.implicit}, time={self.time!r})")
