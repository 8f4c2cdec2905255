"""What a scrub found: paths, detectors and counts, never the values."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..classify import Category

__all__ = ["Finding", "ScrubReport"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One kind of hit at one path. ``label`` is the detector name, or ``field`` for a
    value classified by its key. Values are never recorded.

    Example::

        from flowtrace import Category, Scrubber
        from flowtrace.scrubbing import Finding

        _, report = Scrubber().scrub_with_report({"note": "mail ana@example.com"})
        assert Finding("note", "email", Category.PII) in report.findings
    """

    path: str
    label: str
    category: Category | None


@dataclass
class ScrubReport:
    """Counts of what was scrubbed. Merge reports with ``+=``.

    Example::

        from flowtrace import Scrubber

        _, report = Scrubber().scrub_with_report({"password": "x", "note": "mail ana@example.com"})
        assert report.total == 2
        assert report.by_category() == {"credential": 1, "pii": 1}
    """

    findings: Counter[Finding] = field(default_factory=Counter)
    neutralized: int = 0
    """Control characters (CR, LF, NEL, U+2028/9, ESC...) escaped against log injection."""
    budget_exceeded: int = 0
    """Values redacted whole because they blew the time or size budget (fail closed)."""
    truncated: int = 0
    """Containers cut at ``max_items`` or nesting cut at ``max_depth``."""

    def add(self, path: str, label: str, category: Category | None, count: int = 1) -> None:
        """Record ``count`` hits of ``label`` at ``path``."""
        self.findings[Finding(path, label, category)] += count

    @property
    def total(self) -> int:
        """Number of values (or parts of free text) replaced."""
        return sum(self.findings.values())

    def by_category(self) -> dict[str, int]:
        """Hits per category value (``"pii"``, ``"pci"``...; ``"unclassified"`` if none)."""
        out: Counter[str] = Counter()
        for f, n in self.findings.items():
            out[f.category.value if f.category else "unclassified"] += n
        return dict(out)

    def by_label(self) -> dict[str, int]:
        """Hits per detector name (``"field"`` for key-classified values)."""
        out: Counter[str] = Counter()
        for f, n in self.findings.items():
            out[f.label] += n
        return dict(out)

    def __iadd__(self, other: ScrubReport) -> ScrubReport:
        self.findings.update(other.findings)
        self.neutralized += other.neutralized
        self.budget_exceeded += other.budget_exceeded
        self.truncated += other.truncated
        return self

    def __bool__(self) -> bool:
        return bool(self.findings) or bool(self.neutralized or self.budget_exceeded)
