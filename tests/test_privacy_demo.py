"""The demo's privacy step: one call each for access and erasure, evidence on disk."""

from __future__ import annotations

import json
from pathlib import Path

from flowtrace import audit, privacy


def test_demo_answers_access_and_erasure(tmp_path: Path) -> None:
    """The bundle names every recipient and the derived aggregate; the receipt shreds,
    deletes, lists the mailer as manual and the aggregate for recomputation."""
    from flowtrace._demo import privacy as step

    lines: list[str] = []
    step.run(tmp_path, lines.append)
    bundle = json.loads((tmp_path / "dsar-u-1.json").read_text())
    assert [r["node"] for r in bundle["recipients"]] == [
        "mailer", "redis/0", "sqlite/app", "sqlite/events", "sqlite://app/daily_signups"]
    assert "sqlite://app/daily_signups" in bundle["derived"]
    receipt = json.loads((tmp_path / "erase-u-1.receipt.json").read_text())
    public_key = (tmp_path / "privacy-audit-key.pub").read_bytes()
    privacy.verify_signed(bundle, public_key=public_key)
    body = privacy.verify_signed(receipt, public_key=public_key)
    audit.verify(tmp_path / "privacy-audit.jsonl", public_key=public_key)
    statuses = {s["id"]: s["status"] for s in body["steps"]}
    assert statuses["shred"] == "shredded"
    assert statuses["delete:sqlite/app"] == statuses["delete:redis/0"] == "deleted"
    assert statuses["delete:sqlite/events"] == statuses["manual:mailer"] == "manual"
    assert statuses["recompute:sqlite://app/daily_signups"] == "recompute"
    assert any("KeyDestroyedError" in line for line in lines)

