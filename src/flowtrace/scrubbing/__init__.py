"""Classified-field scrubbing: detectors, strategies, the engine and its report.

The recipe is :func:`flowtrace.scrub`; build a :class:`Scrubber` to choose a schema,
detectors and strategies, and install it for every adapter with
``flowtrace.configure(scrubber=...)``. See docs/scrubbing.md.

Owns detection and redaction of values. May import: :mod:`flowtrace.classify`,
:mod:`flowtrace._settings` (the configured scrubber), :mod:`flowtrace.errors`; never the
adapters that use it (logging, otel) nor the other capabilities.
"""

from __future__ import annotations

from typing import Any

from .._settings import settings as _settings
from ._detectors import BUILTIN_DETECTORS, Detector
from ._engine import Scrubber
from ._report import Finding, ScrubReport
from ._strategies import (
    DROP,
    Drop,
    Encrypt,
    FieldEncryptorLike,
    Mask,
    Pseudonymize,
    Redact,
    Strategy,
)

__all__ = [
    "BUILTIN_DETECTORS",
    "DROP",
    "Detector",
    "Drop",
    "Encrypt",
    "FieldEncryptorLike",
    "Finding",
    "Mask",
    "Pseudonymize",
    "Redact",
    "ScrubReport",
    "Scrubber",
    "Strategy",
    "default_scrubber",
    "scrub",
]

_DEFAULT: Scrubber | None = None


def default_scrubber() -> Scrubber:
    """``configure(scrubber=...)`` if set, else the built-in default :class:`Scrubber`.

    Example::

        import flowtrace as ft
        from flowtrace.scrubbing import default_scrubber

        mine = ft.Scrubber(report_only=True)
        ft.configure(scrubber=mine)
        assert default_scrubber() is mine
    """
    global _DEFAULT
    configured = _settings().scrubber
    if configured is not None:
        if not isinstance(configured, Scrubber):
            from ..errors import ConfigError

            raise ConfigError(
                f"configure(scrubber=...) must be a flowtrace.Scrubber, got "
                f"{type(configured).__name__}"
            )
        return configured
    if _DEFAULT is None:
        _DEFAULT = Scrubber()
    return _DEFAULT


def scrub(obj: Any) -> Any:
    """A scrubbed deep copy of ``obj`` using the configured (or default) scrubber.

    The input is never mutated. Emails, cards (Luhn), IBANs (mod-97), SSNs, phones, IPs,
    JWTs, bearer tokens, cloud/provider keys, private keys and URL passwords are replaced
    by typed placeholders such as ``[REDACTED:email]``; keys such as ``password`` are
    redacted whatever their value looks like.

    Example::

        import flowtrace as ft

        event = {"msg": "refund to jane@example.com", "password": "hunter2", "tokens": 512}
        assert ft.scrub(event) == {
            "msg": "refund to [REDACTED:email]",
            "password": "[REDACTED:credential]",
            "tokens": 512,
        }
        assert event["password"] == "hunter2"             # the input is never mutated
    """
    return default_scrubber().scrub(obj)
