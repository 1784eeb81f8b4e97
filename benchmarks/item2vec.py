"""item2vec benchmark: tastebud.Item2Vec next to gensim Word2Vec (sg=1) on amazon-games.

Protocol (leave-last-out, full ranking): each user's last item is the test target; the model is
trained on every sequence without its last item, and the history used to rank is that training
sequence (its items excluded from the ranking). HitRate@10 and NDCG@10 over all users with a
non-empty history; a target the model cannot rank (never in training) counts as a miss.
``--protocol valid`` trains without the last two items and targets the second-to-last one
(for choosing inference settings without touching the test targets).

gensim's vectors are scored with exactly the same code as tastebud's (they are copied into an
Item2Vec object), so the accuracy columns compare the embeddings, not the ranking code.
Popularity and ItemTransitions (first-order transition counts) are the baselines.

    .venv/bin/python benchmarks/item2vec.py [--quick] [--json out.json]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import copy
import json
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import tastebud as tb
from tastebud.data.sequences import Sequences


def data_path(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    root = os.environ.get("TASTEBUD_DATA", "/work/shared/data")
    return Path(root) / "amazon-games" / "sequences.txt"


def split(seqs: Sequences, protocol: str) -> tuple[Sequences, list[list], np.ndarray]:
    """(train sequences, histories as external-id lists, target external ids)."""
    drop = 1 if protocol == "test" else 2
    lens = seqs.lengths()
    train = seqs.truncate(drop)
    ev = np.flatnonzero(lens >= drop + 1)
    targets = seqs.items.ids[seqs.indices[seqs.indptr[ev] + lens[ev] - drop]]
    ids = seqs.items.ids
    histories = [ids[train.sequence(u)].tolist() for u in ev]
    return train, histories, targets


def hit_ndcg(rec_ids: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    hit = rec_ids == targets[:, None]
    any_ = hit.any(axis=1)
    pos = np.argmax(hit, axis=1)
    return float(any_.mean()), float((any_ / np.log2(pos + 2)).mean())


def evaluate(model, histories, targets, k=10) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # histories/targets with items unseen in training
        ids, _ = model.recommend_for_history(histories, k=k)
    return hit_ndcg(ids, targets)


def fit_tastebud(train: Sequences, params: dict, threads: int, seed: int = 0):
    """(model, wall seconds, CPU seconds of the process)."""
    c0, t0 = time.process_time(), time.perf_counter()
    m = tb.Item2Vec(**params, num_threads=threads, random_state=seed).fit(train)
    return m, time.perf_counter() - t0, time.process_time() - c0


def fit_gensim(train: Sequences, params: dict, threads: int, seed: int = 1):
    from gensim.models import Word2Vec

    sents = [[str(x) for x in s] for s in train.to_lists() if len(s)]
    t0 = time.perf_counter()
    c0 = time.process_time()
    g = Word2Vec(vector_size=params["factors"], window=params["window"], negative=params["n_negatives"],
                 sample=params["sample"], alpha=params["lr"], min_alpha=params["min_lr"], sg=1, hs=0,
                 min_count=1, workers=threads, seed=seed)
    g.build_vocab(sents)
    t1, c1 = time.perf_counter(), time.process_time()
    g.train(sents, total_examples=len(sents), epochs=params["epochs"])
    t2, c2 = time.perf_counter(), time.process_time()
    return g, t2 - t1, t1 - t0, c2 - c1


def gensim_as_item2vec(g, template: "tb.Item2Vec") -> "tb.Item2Vec":
    """An Item2Vec with gensim's input/output vectors in template's item order."""
    m = copy.copy(template)
    keys = [str(x) for x in template.items_.ids]
    rows = np.array([g.wv.key_to_index[k] for k in keys])
    m.item_vectors_ = np.ascontiguousarray(g.wv.vectors[rows], dtype=np.float32)
    m.context_vectors_ = np.ascontiguousarray(g.syn1neg[rows], dtype=np.float32)
    m._unit = None
    return m


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one timing repeat, scaling at one extra size only")
    ap.add_argument("--json", help="write results to this JSON file")
    ap.add_argument("--data", help="amazon-games sequences.txt (default $TASTEBUD_DATA/amazon-games/sequences.txt)")
    ap.add_argument("--protocol", choices=["test", "valid"], default="test")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=None, help="timing repeats (median); default 3, --quick 1")
    ap.add_argument("--no-gensim", action="store_true")
    args = ap.parse_args(argv)
    repeats = args.repeats or (1 if args.quick else 3)

    seqs = Sequences.from_file(data_path(args.data))
    train, histories, targets = split(seqs, args.protocol)
    params = dict(factors=64, window=5, n_negatives=5, epochs=5, sample=1e-3, lr=0.025, min_lr=1e-4)
    print(f"amazon-games: {seqs}; protocol={args.protocol}: train {train.n_interactions} interactions, "
          f"{len(targets)} targets; params {params}; threads={args.threads}", flush=True)

    # JIT warm-up (kernels are cached on disk; this only loads them)
    tb.Item2Vec(factors=8, epochs=1, num_threads=args.threads).fit([[1, 2, 3], [2, 3, 4]])

    rows = []
    res: dict = {"dataset": "amazon-games", "protocol": args.protocol, "params": params, "threads": args.threads,
                 "n_train_interactions": int(train.n_interactions), "n_targets": int(len(targets)),
                 "machine": platform.platform(), "cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    work = train.n_interactions * params["epochs"]

    # baselines
    t0 = time.perf_counter()
    # popularity (users per item in training), history items excluded: ItemTransitions without
    # transitions ranks exactly so
    trans_pop = tb.ItemTransitions().fit(train)
    t_pop = time.perf_counter() - t0
    trans_pop.transitions_ = trans_pop.transitions_ * 0  # zero transitions -> pure popularity
    hr, nd = evaluate(trans_pop, histories, targets)
    rows.append(("popularity", hr, nd, t_pop, None, None))
    t0 = time.perf_counter()
    trans = tb.ItemTransitions().fit(train)
    t_tr = time.perf_counter() - t0
    hr, nd = evaluate(trans, histories, targets)
    rows.append(("ItemTransitions", hr, nd, t_tr, None, None))

    # tastebud and gensim, timing rounds interleaved (the machine is shared: noise hits both alike)
    use_g = not args.no_gensim
    tt, tc, gt, gc, gv, acc_t, acc_g = [], [], [], [], [], [], []
    for r in range(repeats):  # each round a different seed: accuracy as mean over seeds
        m, sec, cpu = fit_tastebud(train, params, args.threads, seed=r)
        tt.append(sec)
        tc.append(cpu)
        acc_t.append(evaluate(m, histories, targets))
        if r == 0:
            m0 = m
            mc = copy.copy(m)
            mc.scoring = "cosine"  # same vectors, cosine scoring
            hr_c, nd_c = evaluate(mc, histories, targets)
        if use_g:
            g, sec, vsec, cpu = fit_gensim(train, params, args.threads, seed=r + 1)
            gt.append(sec)
            gc.append(cpu)
            gv.append(vsec)
            mg = gensim_as_item2vec(g, m0)
            acc_g.append(evaluate(mg, histories, targets))
            if r == 0:
                mg.scoring = "cosine"
                hr_gc, nd_gc = evaluate(mg, histories, targets)
            del g, mg
    m = m0
    hr_t, nd_t = np.mean(acc_t, axis=0)
    t_tb = float(np.median(tt))
    rows.append(("tastebud Item2Vec", hr_t, nd_t, t_tb, float(np.median(tc)), work / t_tb))
    res["tastebud"] = {"hr@10": hr_t, "ndcg@10": nd_t, "per_seed": acc_t, "fit_seconds": tt, "fit_cpu_seconds": tc,
                       "items_per_second": work / t_tb, "cosine": {"hr@10": hr_c, "ndcg@10": nd_c},
                       "pairs_per_epoch": m.n_pairs_ / params["epochs"]}
    if use_g:
        hr_g, nd_g = np.mean(acc_g, axis=0)
        t_g = float(np.median(gt))
        rows.append(("gensim Word2Vec sg=1", hr_g, nd_g, t_g, float(np.median(gc)), work / t_g))
        res["gensim"] = {"hr@10": hr_g, "ndcg@10": nd_g, "per_seed": acc_g, "train_seconds": gt, "train_cpu_seconds": gc,
                         "build_vocab_seconds": gv, "items_per_second": work / t_g,
                         "cosine": {"hr@10": hr_gc, "ndcg@10": nd_gc}, "version": __import__("gensim").__version__}
    res["baselines"] = {name: {"hr@10": hr, "ndcg@10": nd, "seconds": sec} for name, hr, nd, sec, _, _ in rows[:2]}

    print()
    print(f"{'model':<24}{'HR@10':>8}{'NDCG@10':>9}{'seconds':>9}{'CPU s':>8}{'items/s':>12}")
    for name, hr, nd, sec, cpu, ips in rows:
        print(f"{name:<24}{hr:>8.4f}{nd:>9.4f}{sec:>9.2f}{(f'{cpu:.2f}' if cpu else '-'):>8}{(f'{ips:,.0f}' if ips else '-'):>12}")
    print(f"(HR@10 / NDCG@10 are means over {repeats} seed(s); per seed tastebud "
          + ", ".join(f"{h:.4f}" for h, _ in acc_t) + ("; gensim " + ", ".join(f"{h:.4f}" for h, _ in acc_g) if use_g else "") + ")")
    print(f"(cosine scoring of the first seed's vectors: tastebud HR@10 {hr_c:.4f} NDCG@10 {nd_c:.4f}"
          + (f"; gensim HR@10 {hr_gc:.4f} NDCG@10 {nd_gc:.4f})" if use_g else ")"))
    if use_g:
        print(f"ratios tastebud/gensim: HR@10 {hr_t / hr_g:.3f}, NDCG@10 {nd_t / nd_g:.3f}, "
              f"wall time {t_tb / t_g:.3f}, CPU time {np.median(tc) / np.median(gc):.3f} "
              f"(gensim build_vocab {np.median(gv):.2f}s not counted; tastebud's fit includes its setup)")

    # scaling in the number of interactions: half of the users vs all of them
    print("\nscaling (training time vs interactions):", flush=True)
    scale = []
    rng = np.random.default_rng(0)
    for frac in (0.5, 1.0):
        if frac < 1:
            users = np.sort(rng.permutation(train.n_users)[: int(round(frac * train.n_users))])
            sub = train.subset_users(users)
            st, sc_, sg, sgc = [], [], [], []
            for _ in range(repeats):
                _, a, b = fit_tastebud(sub, params, args.threads)
                st.append(a)
                sc_.append(b)
                if use_g:
                    _, a, _, b = fit_gensim(sub, params, args.threads)
                    sg.append(a)
                    sgc.append(b)
        else:
            sub, st, sc_, sg, sgc = train, tt, tc, gt, gc
        n = sub.n_interactions
        row = {"fraction": frac, "interactions": int(n), "tastebud_seconds": float(np.median(st)),
               "tastebud_cpu_seconds": float(np.median(sc_))}
        if use_g:
            row.update(gensim_seconds=float(np.median(sg)), gensim_cpu_seconds=float(np.median(sgc)))
        scale.append(row)
        us = 1e6 * row["tastebud_cpu_seconds"] / (n * params["epochs"])
        gs = (f"; gensim {row['gensim_seconds']:.2f}s wall, {row['gensim_cpu_seconds']:.2f} CPU s "
              f"({1e6 * row['gensim_cpu_seconds'] / (n * params['epochs']):.2f} µs)") if use_g else ""
        print(f"  {frac:>4.0%} users: {n:>7} interactions  tastebud {row['tastebud_seconds']:.2f}s wall, "
              f"{row['tastebud_cpu_seconds']:.2f} CPU s ({us:.2f} CPU µs per interaction-epoch){gs}", flush=True)
    res["scaling"] = scale
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
