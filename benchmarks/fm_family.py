"""The rest of the factorization-machine family, side by side with its references.

    python benchmarks/fm_family.py [--quick] [--json PATH] [--parts ordinal,relational,pitf,fpmc,ffm,bpr]
                                   [--folds u1,u2] [--n-iter N]

* **ordinal** — ``FactorizationMachine(task="ordinal")`` vs myFM's ``MyFMOrderedProbit`` on the
  MovieLens-100K official folds (ratings 1–5 as ordered classes; user and item one-hot, one feature
  group each; MCMC, rank 10, the same sweeps, burn-in and kept samples): accuracy of the most
  probable class, RMSE and MAE of the expected rating Σ_c P(c)·c, fit CPU and wall seconds. The two
  fits of a fold run one after the other in this process, the order alternating from fold to fold.
* **relational** — MovieLens-100K u1 with user/item one-hot and implicit groups (the items a user
  rated, the users who rated an item, 1/√|N|; ~300 non-zeros per rating): tastebud fitted on the
  flat design and on the two relation blocks (same seed), the largest difference of their test
  predictions, and fit times; myFM fitted on the same relation blocks as a reference time.
* **pitf**, **fpmc** — planted problems drawn from PITF (Rendle & Schmidt-Thieme 2010) and FPMC
  (Rendle et al. 2010); each specialised model (implemented here, trained with the same BPR
  sampling, epochs, step and regularisation) against ``BPRFactorizationMachine`` on the
  ``pitf()`` / ``fpmc()`` template: precision@3 of held-out posts' tags, recall@10 of each user's
  last basket.
* **ffm** — a planted field-aware problem: ``FieldAwareFM`` vs ``FactorizationMachine`` (MCMC) RMSE.
* **bpr** — ``BPRFactorizationMachine`` vs ``BPR`` (MF) on the ML-100K 20% holdout: ndcg@10.

numba kernels are compiled by a warm-up before any timing. Every timing is printed with the load
average (``os.getloadavg``) at its start.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from numba import njit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tastebud.data.readers import read_ml100k_ratings  # noqa: E402
from tastebud.models.fm.bpr_fm import BPRFactorizationMachine  # noqa: E402
from tastebud.models.fm.factorization_machine import FactorizationMachine  # noqa: E402
from tastebud.models.fm.ffm import FieldAwareFM  # noqa: E402
from tastebud.models.fm.relational import RelationBlock, flat_design  # noqa: E402
from tastebud.models.fm.templates import fpmc, next_basket_frame, pitf  # noqa: E402

RANK = 10


def data_dir() -> Path:
    d = os.environ.get("TASTEBUD_DATA")
    if not d:
        raise SystemExit("set TASTEBUD_DATA to the shared data folder")
    return Path(d)


def load() -> float:
    return round(os.getloadavg()[0], 2)


def timed(fn):
    la = load()
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0, la


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ============================================================================ ordinal
def ml_ids(tr: pd.DataFrame, te: pd.DataFrame):
    """User and item one-hot over the training fold's ids (unseen test ids: an empty block)."""
    uu, ii = np.unique(tr.user), np.unique(tr.item)
    def onehot(df):
        u = np.searchsorted(uu, df.user.to_numpy())
        i = np.searchsorted(ii, df.item.to_numpy())
        ok_u = (u < len(uu)) & (uu[np.minimum(u, len(uu) - 1)] == df.user.to_numpy())
        ok_i = (i < len(ii)) & (ii[np.minimum(i, len(ii) - 1)] == df.item.to_numpy())
        n = len(df)
        rows = np.concatenate([np.flatnonzero(ok_u), np.flatnonzero(ok_i)])
        cols = np.concatenate([u[ok_u], len(uu) + i[ok_i]])
        return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, len(uu) + len(ii)))
    return onehot(tr), onehot(te), [len(uu), len(ii)]


def ordinal(folds, n_iter, out):
    import myfm

    d = data_dir() / "ml-100k"
    burn = n_iter // 10
    rows = []
    for f, fold in enumerate(folds):
        tr, te = read_ml100k_ratings(d / f"{fold}.base"), read_ml100k_ratings(d / f"{fold}.test")
        X, Xt, sizes = ml_ids(tr, te)
        y, yt = tr.rating.to_numpy().astype(float), te.rating.to_numpy().astype(float)
        groups = np.repeat([0, 1], sizes)

        def tb():
            m = FactorizationMachine(task="ordinal", factors=RANK, epochs=n_iter, burn_in=burn, random_state=0)
            return m.fit(X, y, groups=groups)

        def ref():
            return myfm.MyFMOrderedProbit(rank=RANK, random_seed=0).fit(
                X, (y - 1).astype(int), n_iter=n_iter, n_kept_samples=n_iter - burn, group_shapes=sizes)

        order = [("tastebud", tb), ("myfm", ref)] if f % 2 == 0 else [("myfm", ref), ("tastebud", tb)]
        res = {}
        for name, fn in order:
            m, wall, cpu, la = timed(fn)
            P = m.predict_proba(Xt)
            ex = P @ np.arange(1, 6)
            res[name] = {"acc": float(np.mean(P.argmax(1) + 1 == yt)), "rmse": float(np.sqrt(np.mean((ex - yt) ** 2))),
                         "mae": float(np.mean(np.abs(ex - yt))),
                         "logloss": float(-np.mean(np.log(np.clip(P[np.arange(len(yt)), yt.astype(int) - 1], 1e-15, 1)))),
                         "fit_cpu_s": cpu, "fit_wall_s": wall, "load": la}
            log(fold, name, res[name])
        rows.append({"fold": fold, "n_iter": n_iter, "first": order[0][0], **{f"{k}_{n}": v for n in res for k, v in res[n].items()}})
    out["ordinal"] = rows


# ============================================================================ relational
def ml_implicit_blocks(tr: pd.DataFrame, te: pd.DataFrame):
    """User block [one-hot(u) | items u rated /√|N(u)|], item block [one-hot(i) | users who rated i
    /√|N(i)|], over the training fold; test ids unseen in training map to an all-zero block row."""
    uu, ii = np.unique(tr.user), np.unique(tr.item)
    u = np.searchsorted(uu, tr.user.to_numpy())
    i = np.searchsorted(ii, tr.item.to_numpy())
    R = sp.csr_matrix((np.ones(len(u)), (u, i)), shape=(len(uu), len(ii)))
    norm = lambda M: sp.diags(1 / np.sqrt(np.maximum(np.diff(M.indptr), 1))) @ M  # noqa: E731
    U = sp.vstack([sp.hstack([sp.identity(len(uu)), norm(R)]), sp.csr_matrix((1, len(uu) + len(ii)))]).tocsr()
    I = sp.vstack([sp.hstack([sp.identity(len(ii)), norm(R.T.tocsr())]), sp.csr_matrix((1, len(ii) + len(uu)))]).tocsr()

    def idx(vals, vocab):
        j = np.searchsorted(vocab, vals)
        ok = (j < len(vocab)) & (vocab[np.minimum(j, len(vocab) - 1)] == vals)
        return np.where(ok, j, len(vocab))

    groups = np.repeat([0, 1, 2, 3], [len(uu), len(ii), len(ii), len(uu)])
    blocks = lambda df: [RelationBlock(idx(df.user.to_numpy(), uu), U), RelationBlock(idx(df.item.to_numpy(), ii), I)]  # noqa: E731
    return blocks(tr), blocks(te), groups, [len(uu), len(ii), len(ii), len(uu)]


def relational(n_iter, out):
    import myfm

    d = data_dir() / "ml-100k"
    tr, te = read_ml100k_ratings(d / "u1.base"), read_ml100k_ratings(d / "u1.test")
    rel, rel_t, groups, sizes = ml_implicit_blocks(tr, te)
    y, yt = tr.rating.to_numpy().astype(float), te.rating.to_numpy().astype(float)
    (F, Ft), build_s, _, _ = timed(lambda: (flat_design(None, rel), flat_design(None, rel_t)))
    log(f"flat design: {F.nnz} non-zeros ({F.nnz / F.shape[0]:.0f} per row), built in {build_s:.1f} s")
    kw = dict(rank=RANK, n_iter=n_iter, random_state=0)
    res = {"n_iter": n_iter, "nnz_flat": int(F.nnz), "rows": int(F.shape[0]), "flat_build_s": build_s}
    for name, fn in (("relational", lambda: FactorizationMachine(**kw).fit(None, y, groups=groups, relations=rel)),
                     ("flat", lambda: FactorizationMachine(**kw).fit(F, y, groups=groups))):
        m, wall, cpu, la = timed(fn)
        (p, pwall, pcpu, _) = timed(lambda: m.predict(None, relations=rel_t) if name == "relational" else m.predict(Ft))
        res[name] = {"fit_cpu_s": cpu, "fit_wall_s": wall, "load": la, "predict_cpu_s": pcpu,
                     "rmse": float(np.sqrt(np.mean((p - yt) ** 2)))}
        res[f"pred_{name}"] = p
        log(name, res[name])
    # the relational model predicting on the flat test design too
    res["max_abs_diff"] = float(np.abs(res.pop("pred_relational") - res.pop("pred_flat")).max())
    myrel = lambda bl: [myfm.RelationBlock(b.index, b.X) for b in bl]  # noqa: E731
    m, wall, cpu, la = timed(lambda: myfm.MyFMRegressor(rank=RANK, random_seed=0).fit(
        None, y, X_rel=myrel(rel), n_iter=n_iter, group_shapes=sizes))
    p = m.predict(None, myrel(rel_t))
    res["myfm_relational"] = {"fit_cpu_s": cpu, "fit_wall_s": wall, "load": la, "rmse": float(np.sqrt(np.mean((p - yt) ** 2)))}
    log("myfm relational", res["myfm_relational"])
    out["relational"] = res


# ============================================================================ PITF and FPMC
@njit(cache=False)
def _two_way_epoch(p_ptr, p_ind, p_rows, ctx_a, b_ptr, b_ind, A, X, B, Y, lr, reg, rng_seed):  # pragma: no cover
    """The specialised models, trained by BPR: ŷ(c, t) = A[a_c]·X[t] + mean_{ℓ∈b_c} B[ℓ]·Y[t].
    PITF: a = user, b = {item} (X = tag-user, Y = tag-item factors). FPMC: a = user, b = the
    previous basket (X = item-user, B = previous-item, Y = next-item factors). One SGD step per
    drawn (context, positive, negative); all parameters with L2 ``reg``."""
    np.random.seed(rng_seed)
    nnz, n_cand, k = len(p_ind), X.shape[0], A.shape[1]
    mb = np.zeros(k)
    for _ in range(nnz):
        m = np.random.randint(nnz)
        c = p_rows[m]
        i = p_ind[m]
        s, e = p_ptr[c], p_ptr[c + 1]
        j = np.random.randint(n_cand)
        while np.any(p_ind[s:e] == j):
            j = np.random.randint(n_cand)
        u = ctx_a[c]
        nb = b_ptr[c + 1] - b_ptr[c]
        for f in range(k):
            mb[f] = 0.0
            for q in range(b_ptr[c], b_ptr[c + 1]):
                mb[f] += B[b_ind[q], f]
            mb[f] /= max(nb, 1)
        x = 0.0
        for f in range(k):
            x += A[u, f] * (X[i, f] - X[j, f]) + mb[f] * (Y[i, f] - Y[j, f])
        g = 1.0 / (1.0 + np.exp(x))
        for f in range(k):
            uf, xi, xj = A[u, f], X[i, f], X[j, f]
            A[u, f] += lr * (g * (xi - xj) - reg * uf)
            X[i, f] += lr * (g * uf - reg * xi)
            X[j, f] += lr * (-g * uf - reg * xj)
            yi, yj = Y[i, f], Y[j, f]
            Y[i, f] += lr * (g * mb[f] - reg * yi)
            Y[j, f] += lr * (-g * mb[f] - reg * yj)
            for q in range(b_ptr[c], b_ptr[c + 1]):
                ell = b_ind[q]
                B[ell, f] += lr * (g * (yi - yj) / nb - reg * B[ell, f])


class TwoWay:
    """The specialised model over a template's two context groups (see ``_two_way_epoch``)."""

    def __init__(self, template, k, epochs, lr, reg):
        self.t, self.k, self.epochs, self.lr, self.reg = template, k, epochs, lr, reg
        sizes = template.context.group_sizes()
        self.off_b, self.n_a, self.n_b = sizes[0], sizes[0], sizes[1]

    def _split(self, C):
        a = np.array([C.indices[C.indptr[r]] if C.indptr[r + 1] > C.indptr[r] and C.indices[C.indptr[r]] < self.off_b
                      else -1 for r in range(C.shape[0])], dtype=np.int64)
        lists = [[j - self.off_b for j in C.indices[C.indptr[r]:C.indptr[r + 1]] if j >= self.off_b]
                 for r in range(C.shape[0])]
        b_ptr = np.concatenate([[0], np.cumsum([len(b) for b in lists])]).astype(np.int64)
        return a, b_ptr, np.concatenate(lists).astype(np.int64)

    def fit(self, design):
        P = design.positives
        p_rows = np.repeat(np.arange(P.shape[0]), np.diff(P.indptr)).astype(np.int64)
        rng = np.random.default_rng(0)
        m = design.candidates.shape[0]
        self.A, self.B = rng.normal(0, 0.01, size=(self.n_a, self.k)), rng.normal(0, 0.01, size=(self.n_b, self.k))
        self.X, self.Y = rng.normal(0, 0.01, size=(m, self.k)), rng.normal(0, 0.01, size=(m, self.k))
        a, b_ptr, b_ind = self._split(design.contexts)
        for ep in range(self.epochs):
            _two_way_epoch(P.indptr.astype(np.int64), P.indices.astype(np.int64), p_rows, a, b_ptr, b_ind,
                           self.A, self.X, self.B, self.Y, self.lr, self.reg, ep)
        return self

    def score_candidates(self, C):
        a, b_ptr, b_ind = self._split(C)
        qa = np.where(a[:, None] >= 0, self.A[np.maximum(a, 0)], 0.0)
        qb = np.stack([self.B[b_ind[b_ptr[r]:b_ptr[r + 1]]].mean(0) if b_ptr[r + 1] > b_ptr[r] else np.zeros(self.k)
                       for r in range(len(a))])
        return qa @ self.X.T + qb @ self.Y.T


def _recall(S, truth, n):
    """Mean over contexts of |top-n ∩ truth| / |truth| (truth: CSR rows of positives)."""
    top = np.argsort(-S, 1)[:, :n]
    return float(np.mean([len(set(top[r]) & set(truth.indices[truth.indptr[r]:truth.indptr[r + 1]]))
                          / max(truth.indptr[r + 1] - truth.indptr[r], 1) for r in range(S.shape[0])]))


def _subset(design, rows):
    from tastebud.models.fm.templates import RankingDesign

    return RankingDesign(design.contexts[rows], design.candidates, design.positives[rows], design.groups,
                         design.group_names, design.candidate_ids)


def template_bench(name, template, train_ev, test_ev, k, top_n, epochs, lr, regs):
    """The specialised model (k) and BPR-FM on the template (k and 2k), each with its L2 picked from
    ``regs`` on a validation tenth of the training contexts, then refitted on all of them."""
    template.fit(train_ev)
    design = template.design(train_ev)
    test = template.design(test_ev)  # the same vocabularies: test contexts and their positives
    rng = np.random.default_rng(2)
    is_val = rng.random(design.contexts.shape[0]) < 0.1
    sub, val = _subset(design, np.flatnonzero(~is_val)), _subset(design, np.flatnonzero(is_val))
    models = {f"{name} k={k}": lambda reg: TwoWay(template, k, epochs, lr, reg)}
    for kk in (k, 2 * k):
        models[f"FM+{name.lower()}() k={kk}"] = (lambda kk: lambda reg: BPRFactorizationMachine(
            factors=kk, epochs=epochs, lr=lr, reg=reg, reg_linear=reg, random_state=0, num_threads=1))(kk)
    res = {"contexts_train": int(design.contexts.shape[0]), "contexts_test": int(test.contexts.shape[0]),
           "candidates": int(design.candidates.shape[0]), "epochs": epochs, "lr": lr, "reg_grid": regs}
    for mname, make in models.items():
        val_scores = {reg: _recall(make(reg).fit(sub).score_candidates(val.contexts), val.positives, top_n) for reg in regs}
        best = max(regs, key=lambda r: val_scores[r])
        m, wall, cpu, la = timed(lambda: make(best).fit(design))
        res[mname] = {f"recall@{top_n}": _recall(m.score_candidates(test.contexts), test.positives, top_n),
                      "reg": best, f"valid_recall@{top_n}": val_scores[best], "fit_cpu_s": cpu, "fit_wall_s": wall,
                      "load": la}
        log(mname, res[mname])
    pop = np.asarray(design.positives.sum(0)).ravel().astype(float)
    res["popularity"] = {f"recall@{top_n}": _recall(np.broadcast_to(pop, (test.contexts.shape[0], len(pop))),
                                                    test.positives, top_n)}
    return res


def planted_pitf(n_users, n_items, n_tags, k, n_posts, tags_per_post, seed):
    """Posts (u, i) whose tags are the top ``tags_per_post`` of the PITF score
    ⟨U_u, TU_t⟩ + ⟨I_i, TI_t⟩ plus Gumbel noise (sampling without replacement)."""
    rng = np.random.default_rng(seed)
    U, TU = rng.normal(size=(n_users, k)), rng.normal(size=(n_tags, k))
    I, TI = rng.normal(size=(n_items, k)), rng.normal(size=(n_tags, k))
    u, i = rng.integers(0, n_users, n_posts), rng.integers(0, n_items, n_posts)
    keep = np.sort(np.unique(u * n_items + i, return_index=True)[1])
    u, i = u[keep], i[keep]
    S = U[u] @ TU.T + I[i] @ TI.T + rng.gumbel(scale=1.0, size=(len(u), n_tags))
    top = np.argsort(-S, 1)[:, :tags_per_post]
    return pd.DataFrame({"post": np.repeat(np.arange(len(u)), tags_per_post), "user": np.repeat(u, tags_per_post),
                         "item": np.repeat(i, tags_per_post), "tag": top.ravel()})


def planted_fpmc(n_users, n_items, k, n_baskets, basket_size, seed):
    """Baskets drawn from FPMC: basket t+1's items are the top ``basket_size`` of
    ⟨VUI_u, VIU_l⟩ + mean_{ℓ∈B_t} ⟨VIL_l, VLI_ℓ⟩ plus Gumbel noise (sampling without replacement)."""
    rng = np.random.default_rng(seed)
    VUI, VIU, VIL, VLI = (rng.normal(size=(m, k)) for m in (n_users, n_items, n_items, n_items))
    rows = []
    for u in range(n_users):
        B = rng.choice(n_items, basket_size, replace=False)
        for t in range(n_baskets):
            rows += [(u, t, it) for it in B]
            s = VIU @ VUI[u] + VIL @ VLI[B].mean(0) + rng.gumbel(scale=1.0, size=n_items)
            B = np.argsort(-s)[:basket_size]
    return pd.DataFrame(rows, columns=["user", "basket", "item"])


REGS = [1e-4, 1e-3, 5e-3, 2e-2, 5e-2]


def pitf_bench(quick, out, epochs=None, lr=0.05):
    n_users, n_items, n_tags, k = (300, 200, 100, 8) if quick else (1000, 800, 300, 8)
    out["pitf"] = []
    for n_posts in ([6000] if quick else [30000, 90000]):  # the FM's extra freedom costs less with more data
        df = planted_pitf(n_users, n_items, n_tags, k, n_posts, 5, seed=0)
        test_posts = np.random.default_rng(1).random(df.post.max() + 1) < 0.2
        is_test = test_posts[df.post.to_numpy()]
        res = template_bench("PITF", pitf(), df[~is_test], df[is_test], k, 5, epochs or (30 if quick else 60), lr, REGS)
        out["pitf"].append({"users": n_users, "items": n_items, "tags": n_tags, "tags_per_post": 5, "k_planted": k,
                            "posts_drawn": n_posts, **res})


def fpmc_bench(quick, out, epochs=None, lr=0.05):
    n_users, n_items, k = (300, 200, 8) if quick else (1000, 500, 8)
    baskets = planted_fpmc(n_users, n_items, k, 8, 4, seed=0)
    ev = next_basket_frame(baskets)
    last = ev.groupby("user").tail(4).index  # each user's last transition: the test
    res = template_bench("FPMC", fpmc(), ev.drop(last), ev.loc[last], k, 10, epochs or (30 if quick else 60), lr, REGS)
    out["fpmc"] = {"users": n_users, "items": n_items, "baskets_per_user": 8, "basket_size": 4, "k_planted": k, **res}


# ============================================================================ FFM
def ffm_bench(quick, out):
    from tastebud.kernels import ffm as KF

    rng = np.random.default_rng(0)
    sizes = [50, 40, 30, 20]
    offs = np.cumsum([0] + sizes)
    p, F, k = offs[-1], len(sizes), 4
    fields = np.repeat(np.arange(F), sizes).astype(np.int64)
    V = rng.normal(scale=0.6, size=(p, F, k))
    w = rng.normal(scale=0.3, size=p)
    n = 20000 if quick else 60000
    cols = np.stack([rng.integers(0, s, n) + o for s, o in zip(sizes, offs[:-1])], 1)
    X = sp.csr_matrix((np.ones(F * n), cols.ravel(), np.arange(0, F * n + 1, F)), shape=(n, p))
    y = np.empty(n)
    KF.ffm_predict(X.indptr, X.indices.astype(np.int64), X.data, fields, 0.0, w, V, y)
    y += rng.normal(scale=0.3, size=n)
    tr, te = slice(0, int(0.8 * n)), slice(int(0.8 * n), None)
    res = {"rows": n, "fields": F, "k_planted": k, "noise_sd": 0.3}
    for name, fn in (("FieldAwareFM k=4", lambda: FieldAwareFM(factors=4, epochs=20, lr=0.1, reg=1e-5, random_state=0)
                      .fit(X[tr], y[tr], fields)),
                     ("FactorizationMachine MCMC k=4", lambda: FactorizationMachine(factors=4, epochs=100, random_state=0)
                      .fit(X[tr], y[tr], groups=fields)),
                     ("FactorizationMachine MCMC k=12", lambda: FactorizationMachine(factors=12, epochs=100, random_state=0)
                      .fit(X[tr], y[tr], groups=fields))):
        m, wall, cpu, la = timed(fn)
        res[name] = {"rmse": float(np.sqrt(np.mean((m.predict(X[te]) - y[te]) ** 2))), "fit_cpu_s": cpu,
                     "fit_wall_s": wall, "load": la}
        log(name, res[name])
    out["ffm"] = res


# ============================================================================ BPR-FM on ML-100K
def bpr_bench(quick, out):
    import tastebud as tb
    from tastebud.evaluation.evaluate import evaluate

    df = read_ml100k_ratings(data_dir() / "ml-100k" / "u.data")
    full = tb.Interactions.from_frame(df, rating="rating", timestamp="timestamp")
    train, test = tb.split.holdout(full, test_size=0.2, random_state=0)
    epochs = 30
    res = {"epochs": epochs, "factors": 64, "lr": 0.05, "reg": 0.002}
    from tastebud.warmup import model_kwargs

    for name, fn in (("BPR (MF)", lambda: tb.BPR(**model_kwargs(tb.BPR, factors=64, epochs=epochs, lr=0.05, reg=0.002),
                                                  random_state=0, num_threads=1).fit(train)),
                     ("BPRFactorizationMachine", lambda: BPRFactorizationMachine(factors=64, epochs=epochs, lr=0.05,
                                                                                 reg=0.002, random_state=0,
                                                                                 num_threads=1).fit(train))):
        m, wall, cpu, la = timed(fn)
        res[name] = {**evaluate(m, test, metrics=["ndcg@10", "recall@20"]), "fit_cpu_s": cpu, "fit_wall_s": wall,
                     "load": la}
        log(name, res[name])
    out["bpr"] = res


def warm_up() -> None:
    X = sp.random(200, 20, density=0.2, format="csr", random_state=0)
    y = np.random.default_rng(0).normal(size=200)
    FactorizationMachine(epochs=2, factors=2).fit(X, y)
    FactorizationMachine(task="ordinal", epochs=2, factors=2).fit(X, np.digitize(y, [0.0])).predict_proba(X)
    rels = [RelationBlock(np.arange(200) % 7, sp.random(7, 5, density=0.5, format="csr", random_state=1))]
    FactorizationMachine(epochs=2, factors=2).fit(X, y, relations=rels).predict(X, relations=rels)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--parts", default="ordinal,relational,pitf,fpmc,ffm,bpr")
    ap.add_argument("--folds", default=None, help="ordinal: comma-separated folds (default u1..u5, quick u1)")
    ap.add_argument("--n-iter", type=int, default=None, help="ordinal MCMC sweeps (default 200, quick 50)")
    ap.add_argument("--n-iter-rel", type=int, default=None, help="relational MCMC sweeps (default 50, quick 5)")
    ap.add_argument("--epochs-bpr", type=int, default=None, help="pitf/fpmc: epochs of every model (default 60, quick 30)")
    ap.add_argument("--lr-bpr", type=float, default=0.05, help="pitf/fpmc: SGD step of every model")
    args = ap.parse_args()
    parts = args.parts.split(",")
    folds = args.folds.split(",") if args.folds else (["u1"] if args.quick else [f"u{i}" for i in range(1, 6)])
    out: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "load_start": load(), "parts": parts}
    warm_up()
    if "ordinal" in parts:
        ordinal(folds, args.n_iter or (50 if args.quick else 200), out)
    if "relational" in parts:
        relational(args.n_iter_rel or (5 if args.quick else 50), out)
    if "pitf" in parts:
        pitf_bench(args.quick, out, args.epochs_bpr, args.lr_bpr)
    if "fpmc" in parts:
        fpmc_bench(args.quick, out, args.epochs_bpr, args.lr_bpr)
    if "ffm" in parts:
        ffm_bench(args.quick, out)
    if "bpr" in parts:
        bpr_bench(args.quick, out)
    out["load_end"] = load()
    text = json.dumps(out, indent=1, default=float)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
