"""The resumable state file of an erasure: which steps are done, written atomically after
every step so a killed process loses at most the step it was in."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import ErasureError

__all__ = ["load_state", "save_state"]


def load_state(path: Path, tenant: str, pseudonym: str) -> dict[str, Any]:
    """The saved state for this erasure, or a fresh one; refuses another subject's file."""
    if not path.exists():
        return {"flowtrace_privacy": 1, "kind": "erasure_state", "tenant": tenant,
                "subject_pseudonym": pseudonym, "steps": {}}
    try:
        state = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ErasureError(
            f"erasure state file {path} is unreadable ({exc}); restore it or remove it to "
            "start over (finished steps are idempotent)"
        ) from exc
    if (state.get("tenant"), state.get("subject_pseudonym")) != (tenant, pseudonym):
        raise ErasureError(
            f"erasure state file {path} belongs to another subject or tenant; use one state "
            "file per erasure request"
        )
    return dict(state)


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Write the state atomically (temp file, fsync, rename)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f, sort_keys=True, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
