"""Frequent itemsets + association rules: tastebud FPGrowth side by side with mlxtend (fpgrowth +
association_rules), pyfim (C, Borgelt) and Spark FPGrowth (pyspark, local[2]).

    .venv/bin/python benchmarks/rules.py [--quick] [--json PATH] [--cases groceries:0.005,...] [--libs ...]

Each (library, dataset, min_support) runs in a fresh subprocess so that its peak memory (max RSS of
the process, and the increase over the RSS after loading the data) is its own. Timings exclude
reading the file and building each library's input (lists of transactions, a one-hot DataFrame,
a Spark DataFrame that is cached and counted first); they include producing the result as the
library's own Python-level output (tastebud: the ``itemsets()`` DataFrame of frozensets; pyfim: its
list of tuples; mlxtend: its DataFrame; Spark: ``freqItemsets`` cached and counted).

Rules use minimum confidence 0.5. Rule counts are reported for one-item consequents (what pyfim's
``target='r'`` with ``mode='o'``, and Spark's ``associationRules`` produce) and for all
antecedent/consequent splits (mlxtend's ``association_rules``). pyfim 6.28 never reports a
single-item set whose item is in every basket (mushroom's ``veil-type=p``): its itemset count is
then lower by the number of such items, which the table shows as ``agree``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

DATA = Path(os.environ.get("TASTEBUD_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
MIN_CONF = 0.5
SYN_N = 1_000_000

FULL_CASES = [("retail", 0.0002), ("mushroom", 0.1), ("groceries", 0.001), ("groceries", 0.005), ("retail", 0.001),
              ("mushroom", 0.2), ("synthetic-1m", 0.001)]
QUICK_CASES = [("groceries", 0.005), ("retail", 0.0002), ("mushroom", 0.1)]
LIBS = ["tastebud", "pyfim", "mlxtend", "spark"]
# rules over all splits are materialised by mlxtend only below this many (it builds Python frozensets)
MLXTEND_MAX_RULES = 2_000_000


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


class Clock:
    """Wall and CPU seconds of a block (CPU time is less distorted by other jobs on a shared VM)."""

    def __enter__(self):
        self.w, self.c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.w, time.process_time() - self.c


def reset_peak() -> None:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process, so that the peak measured later
    is that of the mining alone, not of building the input (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def hwm_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


# ----------------------------------------------------------------------------- data
def load_lists(name: str) -> list[list[str]]:
    if name == "groceries":
        with open(DATA / "groceries" / "groceries.csv") as f:
            return [sorted(set(x.strip() for x in line.strip().split(","))) for line in f if line.strip()]
    if name == "retail":
        with open(DATA / "fimi" / "retail.dat") as f:
            return [sorted(set(line.split())) for line in f if line.strip()]
    if name == "mushroom":
        import pandas as pd

        df = pd.read_csv(DATA / "mushroom" / "mushrooms.csv", dtype=str)
        cols = list(df.columns)
        return [[f"{c}={v}" for c, v in zip(cols, row)] for row in df.itertuples(index=False)]
    if name == "synthetic-1m":
        return synthetic_lists()
    raise ValueError(name)


def synthetic_lists() -> list[list[str]]:
    """One million baskets over 2,000 items: Zipf background items (about 6 per basket) and 30
    planted rules (tastebud.data.synthetic.planted_baskets, seed 0)."""
    from tastebud.data.synthetic import planted_baskets

    b, _ = planted_baskets(n_baskets=SYN_N, n_items=2000, n_rules=30, antecedent_size=2, consequent_size=1,
                           antecedent_support=(0.002, 0.05), mean_noise_items=6.0, random_state=0)
    m = b.matrix
    ids = [str(i) for i in b.items.ids.tolist()]
    ind = m.indices.tolist()
    ptr = m.indptr.tolist()
    return [[ids[j] for j in ind[ptr[r]:ptr[r + 1]]] for r in range(m.shape[0])]


# ----------------------------------------------------------------------------- workers
def run_tastebud(lists, ms, info):
    from tastebud.data.baskets import Baskets
    from tastebud.models.rules.fpgrowth import FPGrowth

    b = Baskets(lists)
    FPGrowth(min_support=1.0).fit([["a", "b"], ["a"]]).rules()  # compile / load the numba cache
    base = current_rss_mb()
    reset_peak()
    with Clock() as c1:
        fp = FPGrowth(min_support=ms).fit(b)
    with Clock() as c2:
        df = fp.itemsets()
    out = {"itemsets": len(df), "fit_s": c1.wall, "fit_cpu": c1.cpu, "itemsets_s": c1.wall + c2.wall,
           "itemsets_cpu": c1.cpu + c2.cpu, "min_count": fp.min_count_,
           "items_in_every_basket": int(((fp.itemsets()["count"] == len(b)) & (fp.itemsets()["itemsets"].map(len) == 1)).sum()),
           "max_len": int(fp._max_depth())}
    del df
    with Clock() as c:
        r1 = fp.rules(min_confidence=MIN_CONF, single_consequent=True)
    out.update(rules1=len(r1), rules1_s=c.wall, rules1_cpu=c.cpu)
    del r1
    with Clock() as c:
        out["rules_all"] = fp.count_rules(min_threshold=MIN_CONF)
    out.update(rules_all_count_s=c.wall, rules_all_count_cpu=c.cpu)
    if out["rules_all"] <= MLXTEND_MAX_RULES:
        with Clock() as c:
            r = fp.rules(min_confidence=MIN_CONF)
        out.update(rules_all_s=c.wall, rules_all_cpu=c.cpu)
        del r
    else:
        out["note"] = f"all-split rules ({out['rules_all']:,}) counted by count_rules, not materialised"
    out["base_rss_mb"] = base
    return out


def run_pyfim(lists, ms, info):
    import math

    import fim

    min_count = max(1, math.ceil(ms * len(lists)))
    base = current_rss_mb()
    reset_peak()
    with Clock() as c:
        res = fim.fpgrowth(lists, target="s", supp=-min_count, zmin=1, report="a")
    out = {"itemsets": len(res), "itemsets_s": c.wall, "itemsets_cpu": c.cpu}
    del res
    with Clock() as c:
        rules = fim.fpgrowth(lists, target="r", supp=-min_count, conf=MIN_CONF * 100, zmin=2, report="aC", mode="o")
    out.update(rules1=len(rules), rules1_s=c.wall, rules1_cpu=c.cpu, base_rss_mb=base)
    return out


def run_mlxtend(lists, ms, info):
    import pandas as pd
    from mlxtend.frequent_patterns import association_rules, fpgrowth
    from mlxtend.preprocessing import TransactionEncoder

    te = TransactionEncoder()
    arr = te.fit(lists).transform(lists)
    df = pd.DataFrame(arr, columns=te.columns_)
    del arr
    base = current_rss_mb()
    reset_peak()
    with Clock() as c:
        fi = fpgrowth(df, min_support=ms, use_colnames=True)
    out = {"itemsets": len(fi), "itemsets_s": c.wall, "itemsets_cpu": c.cpu}
    expected = info.get("rules_all")
    if expected is not None and expected > MLXTEND_MAX_RULES:
        out["note"] = f"association_rules skipped: {expected:,} rules would need tens of GB of Python objects"
    else:
        with Clock() as c:
            r = association_rules(fi, num_itemsets=len(df), metric="confidence", min_threshold=MIN_CONF)
        out.update(rules_all=len(r), rules_all_s=c.wall, rules_all_cpu=c.cpu)
        out["rules1"] = int((r["consequents"].map(len) == 1).sum())
    out["base_rss_mb"] = base
    return out


def run_spark(lists, ms, info):
    from pyspark.ml.fpm import FPGrowth as SFP
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").appName("tastebud-bench")
             .config("spark.driver.memory", "6g").config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "4").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        sdf = spark.createDataFrame([(i, b) for i, b in enumerate(lists)], ["id", "items"]).repartition(2).cache()
        sdf.count()
        base = current_rss_mb()
        reset_peak()
        t = time.perf_counter()
        model = SFP(itemsCol="items", minSupport=ms, minConfidence=MIN_CONF).fit(sdf)
        fi = model.freqItemsets.cache()
        out = {"itemsets": fi.count(), "itemsets_s": time.perf_counter() - t}
        t = time.perf_counter()
        out["rules1"] = model.associationRules.count()
        out["rules1_s"] = time.perf_counter() - t
        out["base_rss_mb"] = base
        out["note"] = "peak RSS is the Python driver only; the JVM runs with spark.driver.memory=6g"
    finally:
        spark.stop()
    return out


WORKERS = {"tastebud": run_tastebud, "pyfim": run_pyfim, "mlxtend": run_mlxtend, "spark": run_spark}


def worker_main(lib: str, name: str, ms: float, info: str) -> None:
    lists = load_lists(name)
    res = WORKERS[lib](lists, ms, json.loads(info))
    res["peak_rss_mb"] = rss_mb()
    res["mining_peak_mb"] = hwm_mb()  # peak since reset_peak() (after the input was built)
    res["n_baskets"] = len(lists)
    print("RESULT " + json.dumps(res), flush=True)


# ----------------------------------------------------------------------------- driver
def skip_reason(lib: str, name: str, ms: float, quick: bool) -> str | None:
    if lib == "mlxtend" and name == "synthetic-1m":
        return "skipped: a dense one-hot frame of 1M x 2,000 items (2 GB) and mlxtend's pure-Python tree would exceed the time budget"
    if lib == "mlxtend" and name == "retail" and ms < 0.001:
        return ("skipped by default (--try-skipped runs it: a dense one-hot frame of 88k x 16k items, 1.4 GB; "
                "it took 45 s CPU, 190 s wall and 1.9 GB on 2026-11-24)")
    if quick and lib == "spark" and name != "groceries":
        return "skipped in --quick"
    if quick and lib == "mlxtend" and name != "groceries":
        return "skipped in --quick"
    return None


def run_one(lib, name, ms, info, timeout):
    cmd = [sys.executable, __file__, "--worker", lib, name, str(ms), json.dumps(info)]
    t = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[7:])
            r["wall_s"] = time.perf_counter() - t
            return r
    tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
    return {"error": f"exit {p.returncode}: " + " | ".join(tail)[-300:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--cases", default=None, help="comma list of dataset:min_support")
    ap.add_argument("--libs", default=",".join(LIBS))
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--try-skipped", action="store_true",
                    help="also run the library/case pairs skipped by default (mlxtend on retail 0.0002 and synthetic-1m)")
    ap.add_argument("--recommender-only", action="store_true", help="only the RuleRecommender hidden-item evaluation")
    ap.add_argument("--report", default=None, help="comma list of JSON files from earlier runs: print their merged table")
    ap.add_argument("--worker", nargs=4, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.report:
        rows = [r for f in a.report.split(",") for r in json.loads(Path(f).read_text())["rows"]]
        order = {(n, m): i for i, (n, m) in enumerate(FULL_CASES)}
        lib_order = {lib: i for i, lib in enumerate(LIBS)}
        rows.sort(key=lambda r: (order.get((r["dataset"], r["min_support"]), 99), lib_order.get(r["lib"], 9)))
        print(table(rows))
        return
    if a.worker:
        lib, name, ms, info = a.worker
        worker_main(lib, name, float(ms), info)
        return
    if a.recommender_only:
        res = recommender_eval()
        for metric, r in res.items():
            print(f"RuleRecommender(metric={metric}): {r['n_rules']} rules, hit_rate@10 {r['rules_hit_rate@10']:.4f} "
                  f"(popularity {r['popularity_hit_rate@10']:.4f}), mrr@10 {r['rules_mrr@10']:.4f} "
                  f"(popularity {r['popularity_mrr@10']:.4f}) over {r['n_baskets']:.0f} test baskets; fit {r['fit_s']:.2f}s")
        if a.json:
            Path(a.json).write_text(json.dumps(res, indent=1))
        return
    cases = QUICK_CASES if a.quick else FULL_CASES
    if a.cases:
        cases = [(c.split(":")[0], float(c.split(":")[1])) for c in a.cases.split(",")]
    libs = a.libs.split(",")
    rows = []
    meta = {"machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores (shared VM)",
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "quick": a.quick,
            "min_confidence": MIN_CONF, "command": " ".join(sys.argv)}

    def save():
        if a.json:
            Path(a.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))

    for name, ms in cases:
        info: dict = {}
        for lib in libs:
            reason = skip_reason(lib, name, ms, a.quick)
            if lib != "tastebud" and reason and not (a.try_skipped and lib == "mlxtend"):
                rows.append({"dataset": name, "min_support": ms, "lib": lib, "skipped": reason})
                print(f"{name:13s} {ms:<7g} {lib:9s} {reason}", flush=True)
                save()
                continue
            r = run_one(lib, name, ms, info, a.timeout)
            if lib == "tastebud" and "error" not in r:
                info = {"rules_all": r["rules_all"], "itemsets": r["itemsets"], "rules1": r["rules1"],
                        "always": r["items_in_every_basket"]}
            r.update({"dataset": name, "min_support": ms, "lib": lib})
            rows.append(r)
            print(fmt_row(r, info), flush=True)
            save()
    print()
    print(table(rows))
    save()
    if "tastebud" in libs and a.cases is None:
        rec = recommender_eval()
        meta["recommender"] = rec
        for metric, r in rec.items():
            print(f"RuleRecommender(metric={metric}) on groceries: hit_rate@10 {r['rules_hit_rate@10']:.4f} "
                  f"(popularity {r['popularity_hit_rate@10']:.4f}), mrr@10 {r['rules_mrr@10']:.4f} "
                  f"(popularity {r['popularity_mrr@10']:.4f})")
        save()


def recommender_eval() -> dict:
    """RuleRecommender vs popularity on Groceries: 80/20 split of whole baskets (seed 0), one random
    item hidden per test basket with >= 2 items, top-10 from the rest."""
    from tastebud.data.baskets import Baskets
    from tastebud.models.rules.recommender import RuleRecommender, evaluate_hidden_item, split_baskets

    g = Baskets.from_file(DATA / "groceries" / "groceries.csv", sep=",")
    train, test = split_baskets(g, test_size=0.2, random_state=0)
    out = {}
    for metric in ("confidence", "lift"):
        with Clock() as c:
            rec = RuleRecommender(min_support=0.002, min_confidence=0.1, max_len=3, metric=metric).fit(train)
        res = evaluate_hidden_item(rec, test, k=10, random_state=0)
        res.update(n_rules=rec.n_rules_, fit_s=c.wall)
        out[metric] = res
    return out


def fmt_row(r, info):
    if "error" in r:
        return f"{r['dataset']:13s} {r['min_support']:<7g} {r['lib']:9s} ERROR {r['error']}"
    s = f"{r['dataset']:13s} {r['min_support']:<7g} {r['lib']:9s} itemsets={r['itemsets']:>9,} in {r['itemsets_s']:8.3f}s"
    if "rules1" in r:
        s += f"  rules(1-cons)={r['rules1']:>9,}"
    if "rules_all" in r:
        s += f"  rules(all)={r['rules_all']:>11,}"
    s += f"  peak={r['peak_rss_mb']:.0f}MB"
    return s


def agree(r, ref):
    """Do the counts of this library agree with tastebud's (allowing pyfim's documented quirk)?"""
    if ref is None or "error" in r or "skipped" in r:
        return ""
    ok = True
    want_items = ref["itemsets"] - (ref.get("items_in_every_basket", 0) if r["lib"] == "pyfim" else 0)
    ok &= r["itemsets"] == want_items
    if "rules1" in r:
        ok &= r["rules1"] == ref["rules1"]
    if "rules_all" in r:
        ok &= r["rules_all"] == ref["rules_all"]
    return "yes" if ok else "NO"


def _t(r, key):
    w, c = r.get(f"{key}_s"), r.get(f"{key}_cpu")
    if w is None:
        return ""
    return f"{w:.3f}" + (f" ({c:.3f})" if c is not None else "")


def _cost(r, key, wall=False):
    """CPU seconds where measured (in-process libraries), else wall seconds (Spark)."""
    return r.get(f"{key}_s") if wall else r.get(f"{key}_cpu", r.get(f"{key}_s"))


def _mem(r):
    """Peak RSS while mining (input excluded) and its increase over the RSS with the input built;
    runs without the peak reset show the process-lifetime maximum RSS instead (marked *)."""
    if r.get("mining_peak_mb") is not None and r["mining_peak_mb"] == r["mining_peak_mb"]:
        return f"{r['mining_peak_mb']:.0f} (+{r['mining_peak_mb'] - r['base_rss_mb']:.0f})"
    return f"{r['peak_rss_mb']:.0f}*"


def table(rows):
    head = ("| dataset | min supp | library | itemsets | rules 1-cons. | rules all splits | tastebud fit, arrays s | "
            "itemsets s | rules 1-cons. s | rules all s | peak RSS MB while mining (+ over input) | counts agree | library time / tastebud time |")
    lines = [head, "|" + "---|" * 13]
    ref = {}
    for r in rows:
        if r["lib"] == "tastebud" and "error" not in r:
            ref[(r["dataset"], r["min_support"])] = r
    for r in rows:
        key = (r["dataset"], r["min_support"])
        if "skipped" in r or "error" in r:
            lines.append(f"| {r['dataset']} | {r['min_support']:g} | {r['lib']} | | | | | | | | | | {r.get('skipped') or r.get('error')} |")
            continue
        tb = ref.get(key)
        ratio = []
        if tb is not None and r["lib"] != "tastebud":
            w = "itemsets_cpu" not in r  # Spark: wall against wall
            c = lambda x, k: _cost(x, k, w)  # noqa: E731
            ratio.append(f"itemsets {c(r, 'itemsets') / c(tb, 'itemsets'):.1f}x" + (" (wall)" if w else ""))
            if r["lib"] == "pyfim":
                ratio.append(f"itemsets vs tastebud arrays {c(r, 'itemsets') / c(tb, 'fit'):.1f}x")
            if c(r, "rules1") and c(tb, "rules1"):
                ratio.append(f"itemsets+rules(1) {(c(r, 'itemsets') + c(r, 'rules1')) / (c(tb, 'itemsets') + c(tb, 'rules1')):.1f}x")
            if c(r, "rules_all") and c(tb, "rules_all"):
                ratio.append(f"itemsets+rules(all) {(c(r, 'itemsets') + c(r, 'rules_all')) / (c(tb, 'itemsets') + c(tb, 'rules_all')):.1f}x")
        rules_all_t = _t(r, "rules_all") or (_t(r, "rules_all_count") + " counted" if r.get("rules_all_count_s") else "")
        note = r.get("note", "")
        lines.append(
            f"| {r['dataset']} | {r['min_support']:g} | {r['lib']} | {r['itemsets']:,} | "
            f"{format(r['rules1'], ',') if 'rules1' in r else ''} | {format(r['rules_all'], ',') if 'rules_all' in r else ''} | "
            f"{_t(r, 'fit')} | {_t(r, 'itemsets')} | {_t(r, 'rules1')} | {rules_all_t} | "
            f"{_mem(r)} | "
            f"{agree(r, tb)} | {'; '.join(ratio)}{(' — ' + note) if note else ''} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
