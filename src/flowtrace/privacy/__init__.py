"""Privacy operations from evidence: subject access (Art. 15), erasure (Art. 17), and
records of processing (Art. 30).

::

    from flowtrace import privacy

    evidence = privacy.gather("u-1", tenant="acme", sources=["spans.jsonl"], audit="audit.jsonl")
    bundle = privacy.subject_report("u-1", tenant="acme", evidence=evidence,
                                    stores=[profiles], encryptor=enc, signing_key=key)
    receipt = privacy.erase("u-1", tenant="acme", vault=vault, stores=[profiles],
                            evidence=evidence, state_file="erase-u-1.json", signing_key=key)
    privacy.verify_erasure("u-1", tenant="acme", stores=[profiles], encryptor=enc)

Evidence comes from the data-flow map (:mod:`flowtrace.map`: spans carrying the subject's
pseudonym), lineage ``derived_from`` and audit ``query``; the application registers a
:class:`SubjectStore` per store it can read and delete. Bundles and receipts are signed with
the audit Ed25519 key. Formats: docs/spec/privacy.md; guide: docs/privacy.md.

Sits above map, lineage, audit and crypto; imports their public names only.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from ._access import subject_report, verify_erasure
from ._erase import ErasureStep, erase, plan_erasure
from ._evidence import NodeEvidence, SubjectEvidence, gather, pseudonym_of
from ._html import bundle_html
from ._ropa import render_ropa, ropa
from ._signing import sign, verify_signed
from ._stores import SubjectStore

__all__ = [
    "ErasureStep",
    "NodeEvidence",
    "SubjectEvidence",
    "SubjectStore",
    "bundle_html",
    "erase",
    "gather",
    "plan_erasure",
    "pseudonym_of",
    "render_ropa",
    "ropa",
    "sign",
    "subject_report",
    "verify_erasure",
    "verify_signed",
]

for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("flowtrace.privacy._"):
        _obj.__module__ = __name__
del _name, _obj
