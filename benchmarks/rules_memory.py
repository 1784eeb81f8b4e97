"""Memory of the association-rule outputs: rules streamed to Parquet in chunks
(``FPGrowth.rules_to_parquet``) against the same rules built in memory (``FPGrowth.rules()``), and
the size guards on the cases that used to exhaust the machine.

    .venv/bin/python benchmarks/rules_memory.py [--quick] [--json PATH]

Each measurement runs in a fresh subprocess: the data are read and mined first, then the peak
RSS is reset (``/proc/self/clear_refs``) and the step runs; the table gives the step's peak RSS
above the RSS after mining (Linux only), its wall and CPU seconds, and the rows it produced.
Groceries (9,835 baskets) at low absolute counts gives from 0.7M to 73M rules; the streamed peak
must stay flat (it depends on ``chunk_size``, not on the number of rules) while the in-memory one
grows about 170 bytes per rule. The in-memory path is only run where it fits under ``max_rules``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

DATA = Path(os.environ.get("TASTEBUD_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
# (label, min_support count, single_consequent, min_confidence, max_len)
CASES = [
    ("groceries count 3, all splits", 3, False, 0.5, None),          # 673,881 rules
    ("groceries count 2, all splits, conf 0.9", 2, False, 0.9, None),
    ("groceries count 2, all splits", 2, False, 0.5, None),           # 73,028,091 rules
]
QUICK = CASES[:2]
CHUNK = 250_000


def _status() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS", "VmHWM")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out


def worker(case: int, mode: str) -> dict:
    from tastebud.data.baskets import Baskets
    from tastebud.models.rules.fpgrowth import FPGrowth

    label, count, single, conf, max_len = CASES[case]
    b = Baskets.from_file(DATA / "groceries" / "groceries.csv", sep=",")
    fp = FPGrowth(count, max_len=max_len, max_rules=None).fit(b)
    n = fp.count_rules(min_threshold=conf, single_consequent=single)
    if mode == "memory" and n > 10_000_000:
        return {"case": label, "mode": mode, "rules": n, "skipped": "more than 10M rules: not built in memory"}
    with tempfile.TemporaryDirectory() as d:  # load pyarrow and warm the kernels outside the measurement
        FPGrowth(1.0).fit([["a", "b"], ["a", "b"]]).rules_to_parquet(Path(d) / "w.parquet", min_threshold=0.0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak RSS
    base = _status()["VmRSS"]
    t, c = time.time(), time.process_time()
    if mode == "stream":
        with tempfile.TemporaryDirectory() as d:
            rows = fp.rules_to_parquet(Path(d) / "r.parquet", min_threshold=conf, single_consequent=single,
                                       chunk_size=CHUNK)
            size = (Path(d) / "r.parquet").stat().st_size
    else:
        rows = len(fp.rules(min_threshold=conf, single_consequent=single))
        size = 0
    wall, cpu = time.time() - t, time.process_time() - c
    peak = _status()["VmHWM"]
    return {"case": label, "mode": mode, "rules": n, "rows": rows, "peak_above_mb": round(peak - base, 1),
            "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "file_mb": round(size / 2**20, 1),
            "itemsets": fp.n_itemsets_}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", default=None)
    ap.add_argument("--worker", nargs=2, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(int(a.worker[0]), a.worker[1])))
        return
    rows = []
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    meta = {"machine": f"{platform.node()} {os.cpu_count()} cores (shared VM)", "load": load,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "command": " ".join(sys.argv),
            "chunk_size": CHUNK}
    print(f"{'case':42s} {'mode':7s} {'rules':>12s} {'peak MB':>9s} {'wall s':>7s} {'cpu s':>6s} {'file MB':>8s}")
    for i, case in enumerate(QUICK if a.quick else CASES):
        for mode in ("stream", "memory"):
            p = subprocess.run([sys.executable, __file__, "--worker", str(i), mode], capture_output=True, text=True)
            if p.returncode:
                print(p.stderr[-1500:], file=sys.stderr)
                raise SystemExit(p.returncode)
            r = json.loads(p.stdout.strip().splitlines()[-1])
            rows.append(r)
            if "skipped" in r:
                print(f"{r['case']:42s} {mode:7s} {r['rules']:12,d} {r['skipped']}", flush=True)
                continue
            print(f"{r['case']:42s} {mode:7s} {r['rules']:12,d} {r['peak_above_mb']:9.1f} {r['wall_s']:7.2f} "
                  f"{r['cpu_s']:6.2f} {r['file_mb']:8.1f}", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
