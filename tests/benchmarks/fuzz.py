"""The long fuzz run: tests/test_fuzz.py with 1,000 Hypothesis cases per test (CI runs 100).

    python tests/benchmarks/fuzz.py [--examples N]

Prints each test's outcome and the time taken; exit status is pytest's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=1000)
    args = ap.parse_args()
    env = {**os.environ, "APPLIANCE_FUZZ_EXAMPLES": str(args.examples)}
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "pytest", "tests/test_fuzz.py", "-q", "-p",
                        "no:cacheprovider", "--durations=0", "--hypothesis-show-statistics"],
                       cwd=REPO, env=env)
    print(f"{args.examples} cases per test, {time.monotonic() - t0:.0f} s in all")
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
