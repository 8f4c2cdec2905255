"""Loads the optional C fast path of FieldEncryptor (``flowtrace.crypto._fastpath``).

Built by the same hatchling hook as ``flowtrace._speedups`` (see hatch_build.py). Without
it (no compiler at install time, or ``FLOWTRACE_PURE_PYTHON=1``) the pure-Python
encrypt/decrypt in ``_encryptor.py`` are used: same tokens, same errors, same events.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Final

__all__ = ["FASTPATH"]


def _load() -> ModuleType | None:
    # Not loaded: the C fast path read the flow context's private node layout from its
    # context variable, which is now private to flowtrace.flowcontext (and has changed).
    # The extension is being removed (one pure-Python implementation, issue 11).
    if os.environ.get("FLOWTRACE_PURE_PYTHON", "") not in ("", "0"):
        return None
    return None


FASTPATH: Final = _load()
"""The C module when encrypt/decrypt run on it, else ``None``."""
