"""SASRec with its *defaults*, as a user who does not read the docs runs it (issue #14 item 11).

    .venv/bin/python benchmarks/sasrec_defaults.py [--paper] [--set name=value ...] [--json PATH]

Protocol (the issue's): amazon-games; each user's last item is the test item; 10% of users
(seeded) are held out of training entirely; ``SASRec(**settings).fit(train)`` on the other
users' sequences without their last item — no ``valid``, no ``init_embeddings``, no thread
setting — then every user's test item is ranked after the history seq[:-1] (seen users: their
own training history; unseen users: in context, the same call). Metrics at 10: full ranking
over all items not in the history, and sampled against 100 items the user never touched (the
paper's protocol; negatives and ranking code shared with ``benchmarks/sequential.py``).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from sequential import data_path, evaluate, sample_negatives  # noqa: E402

from tastebud.data.sequences import Sequences  # noqa: E402


def _value(v: str):
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--paper", action="store_true", help="SASRec.paper() instead of SASRec()")
    ap.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="constructor overrides")
    ap.add_argument("--holdout-seed", type=int, default=1, help="seed choosing the 10%% of users held out of training")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from tastebud.models.sequential.sasrec import SASRec

    over = {k: _value(v) for k, v in (s.split("=", 1) for s in args.set)}
    seqs = Sequences.from_file(data_path())
    lens = seqs.lengths()
    users = np.flatnonzero(lens >= 2)
    rng = np.random.default_rng(args.holdout_seed)
    held = np.zeros(seqs.n_users, dtype=bool)
    held[rng.choice(seqs.n_users, seqs.n_users // 10, replace=False)] = True
    train = seqs.subset_users(np.flatnonzero(~held)).truncate(1)
    model = SASRec.paper(**over) if args.paper else SASRec(**over)
    print(f"amazon-games: {seqs.n_users} users ({held.sum()} held out of training), {seqs.n_items} items; "
          f"{model!r}", flush=True)

    t0, c0 = time.perf_counter(), time.process_time()
    load0 = os.getloadavg()[0]
    model.fit(train)
    minutes = (time.perf_counter() - t0) / 60
    cpu_minutes = (time.process_time() - c0) / 60  # all threads of this process

    items_ids = seqs.items.ids
    hist = [seqs.sequence(u)[:-1] for u in users]
    tgt = np.array([seqs.sequence(u)[-1] for u in users])
    negs = sample_negatives(seqs, users, seqs.n_items)
    res = {"all": evaluate(model, hist, tgt, negs, items_ids)}
    for name, mask in (("seen", ~held[users]), ("unseen", held[users])):
        idx = np.flatnonzero(mask)
        res[name] = evaluate(model, [hist[j] for j in idx], tgt[idx], negs[idx], items_ids)
    out = {"settings": model.get_params(), "minutes": round(minutes, 2), "cpu_minutes": round(cpu_minutes, 2),
           "load_before": load0, "load_after": os.getloadavg()[0], "epochs_run": len(model.history_),
           "best_epoch": model.best_epoch_, "n_users": int(len(users)), "n_unseen": int(held[users].sum()), **res,
           "history": model.history_}
    print(json.dumps({k: v for k, v in out.items() if k not in ("history", "settings")}, indent=1), flush=True)
    a = res["all"]
    print(f"sampled HR@10 {a['sampled_hr@10']:.4f}  full NDCG@10 {a['full_ndcg@10']:.4f}  "
          f"{minutes:.1f} min ({cpu_minutes:.1f} CPU min), {len(model.history_)} epochs (best {model.best_epoch_})")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
