"""The demo: one step per capability, each a module with ``run(out, say) -> None``.

A step raises to fail the demo; it reports what it demonstrated through ``say``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

STEPS = (
    "foundation",
    "propagation",
    "scrubbing",
    "encryption",
    "lineage",
    "audit",
    "map",
    "privacy",
    "trust",
)

Say = Callable[[str], None]


def run(out: Path) -> int:
    """Run every step, writing artefacts under ``out``; returns an exit code."""
    out.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(STEPS, 1):
        print(f"\n== {index}. {name} ==")
        step = importlib.import_module(f"flowtrace._demo.{name}")
        step.run(out, lambda line: print(f"   {line}"))
    print(f"\nall {len(STEPS)} steps passed; artefacts in {out.resolve()}")
    return 0
