"""`flowtrace ropa`, `flowtrace dsar` and `flowtrace erase` over files and an app module."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import pytest

from flowtrace import audit, privacy
from flowtrace.cli import main
from flowtrace.otel import JsonLinesSpanExporter

from ._map_system import system_spans

DECLARED = Path(__file__).parent / "map" / "shop.toml"


@pytest.fixture
def spans_file(tmp_path: Path) -> Path:
    path = tmp_path / "spans.jsonl"
    exporter = JsonLinesSpanExporter(path)
    exporter.export(system_spans())
    exporter.shutdown()
    return path


def test_ropa_lists_undeclared_activities_first(
    spans_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An observed purpose missing from the declaration is the first record, marked
    UNDECLARED with its evidence; declared and observed purposes are evidenced."""
    declared = tmp_path / "map.toml"
    text = DECLARED.read_text().replace('"checkout"', '"checkout-v0"')
    declared.write_text(text)
    assert main(["ropa", "--declared", str(declared), "--from", str(spans_file),
                 "--format", "csv", "--controller", "Acme Ltd"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["purpose"] == "checkout"
    assert rows[0]["status"] == "UNDECLARED"
    assert rows[0]["evidence"]
    assert {r["purpose"]: r["status"] for r in rows[1:]}.get("checkout-v0") == "declared-only"


def test_ropa_fields_evidenced_against_the_declaration(spans_file: Path) -> None:
    """With the matching declaration, categories, bases and recipients are evidenced with
    sample trace ids, and security measures say what travelled in plaintext."""
    from flowtrace import map as ftmap

    declared = ftmap.load_declared(DECLARED)
    observed = ftmap.build([spans_file])
    (record,) = [r for r in privacy.ropa(observed, declared) if r["purpose"] == "checkout"]
    assert record["categories_of_data"]["status"] == "evidenced"
    assert record["categories_of_data"]["sample_traces"]
    assert record["legal_bases"]["value"] == ["contract"]
    assert "email" not in json.dumps(record)  # categories, never values
    for fmt in ("json", "html"):
        assert "checkout" in privacy.render_ropa([record], fmt)


APP = '''
from pathlib import Path
from flowtrace.crypto import KeyVault, LocalKeyProvider, SqliteVaultStore
import sys
sys.path.insert(0, {tests!r})
from _privacy_stores import SqliteRows
d = Path({tmp!r})
VAULT = KeyVault(LocalKeyProvider({{"kek": b"k" * 32}}), SqliteVaultStore(d / "keys.db"),
                 kek_id="kek")
STORES = [SqliteRows(d / "app.db", "sqlite/app")]
'''


def test_dsar_then_erase_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """dsar prints a signed bundle with the decrypted data (and an HTML page); erase
    prints a signed receipt, and a second run resumes (nothing repeated)."""
    import flowtrace as ft
    from flowtrace.crypto import FieldEncryptor

    module = f"privacy_app_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(
        APP.format(tests=str(Path(__file__).parent), tmp=str(tmp_path)))
    monkeypatch.syspath_prepend(str(tmp_path))
    app = __import__(module)
    with ft.context(tenant="acme", subject="u-1"):
        app.STORES[0].put("acme", "u-1",
                          FieldEncryptor(app.VAULT).encrypt("ana@example.com", field="email"))
    key = audit.generate_key()
    (tmp_path / "key.pem").write_bytes(audit.private_key_pem(key))
    (tmp_path / "pseudo.key").write_bytes(b"p" * 32)
    common = ["u-1", "--tenant", "acme", "--stores", f"{module}:STORES",
              "--pseudonym-key", str(tmp_path / "pseudo.key"),
              "--signing-key", str(tmp_path / "key.pem"), "--audit", str(tmp_path / "a.jsonl")]
    out = tmp_path / "bundle.json"
    assert main(["dsar", *common, "--vault", f"{module}:VAULT", "--out", str(out)]) == 0
    bundle = privacy.verify_signed(json.loads(out.read_text()), public_key=key.public_key())
    assert bundle["data"][0]["records"][0]["email"] == "ana@example.com"
    assert "ana@example.com" in (tmp_path / "bundle.json.html").read_text()
    erase = ["erase", *common, "--vault", f"{module}:VAULT", "--state", str(tmp_path / "s.json")]
    assert main(erase) == 0
    receipt = json.loads(capsys.readouterr().out)
    assert receipt["summary"] == {"shredded": 1, "deleted": 1}
    assert main(erase) == 0
    assert "skipped (done before)" in capsys.readouterr().err
    assert app.STORES[0].calls() == 1
    sys.modules.pop(module, None)


def test_bad_store_spec_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --stores value that is not MODULE:NAME exits 2 with what to write."""
    key = tmp_path / "key.pem"
    key.write_bytes(audit.private_key_pem(audit.generate_key()))
    (tmp_path / "p.key").write_bytes(b"p" * 32)
    assert main(["dsar", "u-1", "--tenant", "acme", "--stores", "nocolon",
                 "--pseudonym-key", str(tmp_path / "p.key"), "--signing-key", str(key)]) == 2
    assert "MODULE:NAME" in capsys.readouterr().err
