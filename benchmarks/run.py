"""Run every benchmarks/bench_*.py (or those whose name contains an argument).

Each benchmark measures flowtrace and a named baseline in the same run and prints the
ratio. Record results in benchmarks/RESULTS.md with the machine and date.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(filters: list[str]) -> int:
    failed = 0
    for path in sorted(HERE.glob("bench_*.py")):
        if filters and not any(f in path.stem for f in filters):
            continue
        print(f"\n### {path.stem}", flush=True)
        failed |= subprocess.run([sys.executable, str(path)], cwd=HERE.parent).returncode
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
