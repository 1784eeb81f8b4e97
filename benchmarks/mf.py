"""Matrix factorization benchmarks: runs the explicit half (Surprise SVD/SVDpp side by side) and the
implicit half (implicit's ALS/BPR side by side) in one go.

    python benchmarks/mf.py [--quick] [--json PATH]

With --json PATH, each half writes PATH with its own suffix (PATH.explicit.json, PATH.implicit.json).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="representative subset, < 5 minutes per half on 2 cores")
    ap.add_argument("--json", default=None, help="write machine-readable results")
    args = ap.parse_args()
    rc = 0
    for half in ("explicit", "implicit"):
        cmd = [sys.executable, str(HERE / f"mf_{half}.py")]
        if args.quick:
            cmd.append("--quick")
        if args.json:
            cmd += ["--json", f"{args.json}.{half}.json"]
        print(f"\n=== {' '.join(cmd)}", flush=True)
        rc |= subprocess.call(cmd)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
