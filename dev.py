#!/usr/bin/env python3
"""Project tasks. Each one creates/uses its own virtual environment (``.venv``).

    python3 dev.py demo     # run the end-to-end demo (embedded defaults, no servers)
    python3 dev.py test     # ruff, mypy and the whole pytest suite
    python3 dev.py bench    # benchmarks against peer libraries (installs the [bench] extra)

Only the standard library is used here, so a fresh machine with Python 3.11+ is enough.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")


def _run(*cmd: str | Path, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    result = subprocess.run([str(c) for c in cmd], cwd=ROOT, env=env)
    if result.returncode:
        sys.exit(result.returncode)


def ensure_venv(extra: str) -> None:
    """Create .venv and install flowtrace editable with ``extra``, unless already current."""
    if sys.version_info < (3, 11):
        sys.exit(f"flowtrace needs Python 3.11+, this is {sys.version.split()[0]}")
    stamp = VENV / f".installed-{extra}"
    # Re-install when the project metadata changes (the editable install reads the rest
    # straight from src/).
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and PY.exists():
        return
    if not PY.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    _run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(PY, "-m", "pip", "install", "--quiet", "-e", f".[{extra}]")
    stamp.write_text(digest)


def demo(args: list[str]) -> None:
    ensure_venv("dev")
    _run(BIN / "flowtrace", "demo", *args)


def test(args: list[str]) -> None:
    ensure_venv("dev")
    _run(PY, "-m", "ruff", "check", "src", "tests", "examples", "benchmarks")
    _run(PY, "-m", "mypy")
    _run(BIN / "lint-imports")
    _run(PY, "-m", "pytest", *args)
    _run(PY, "-m", "flowtrace.cli", "--version")


def bench(args: list[str]) -> None:
    ensure_venv("bench")
    _run(PY, "benchmarks/run.py", *args)


TASKS = {"demo": demo, "test": test, "bench": bench}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        sys.exit(__doc__)
    TASKS[sys.argv[1]](sys.argv[2:])
