"""`flowtrace lineage trace|subject` answer from a buffer directory or file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import flowtrace as ft
from flowtrace import lineage
from flowtrace.cli import main

KEY = bytes(range(32))


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A buffer directory written by real steps (no exporter: a local lineage store)."""
    buffer = lineage.LineageBuffer(tmp_path / "lineage")
    ft.configure(lineage=ft.lineage.LineageConfig(buffer=buffer, pseudonym_key=KEY))

    @ft.step(
        "normalize",
        inputs=lambda c, who: [f"stripe:charge/{c}"],
        subjects=lambda c, who: [who],
        outputs=lambda o: [o],
        code_version="etl-1",
    )
    def normalize(charge: str, who: str) -> str:
        return f"pg://billing/orders#{charge}"

    @ft.step("report", inputs=lambda orders: orders, outputs=["s3://reports/2026-01.json"])
    def report(orders: list[str]) -> None:
        pass

    with ft.context(tenant="acme"):
        report([normalize("ch_1", "alice@example.com"), normalize("ch_2", "bob@example.com")])
    buffer.close()
    return tmp_path / "lineage"


def test_trace_prints_a_tree_and_sources(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The text tree shows steps and inputs down to the charge ids."""
    assert main(["lineage", "trace", "s3://reports/2026-01.json", "--from", str(store)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "s3://reports/2026-01.json"
    assert "-< report" in out
    assert "-< normalize etl-1 tenant=acme" in out
    assert "sources (2): stripe:charge/ch_1, stripe:charge/ch_2" in out


def test_trace_json(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json gives the tree and the sources as JSON."""
    assert (
        main(["lineage", "trace", "s3://reports/2026-01.json", "--from", str(store), "--json"]) == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert sorted(data["sources"]) == ["stripe:charge/ch_1", "stripe:charge/ch_2"]
    assert data["tree"]["produced_by"][0]["step"] == "report"


def test_trace_downstream(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--downstream lists what was derived from an identifier."""
    assert (
        main(
            [
                "lineage",
                "trace",
                "stripe:charge/ch_2",
                "--from",
                str(store),
                "--downstream",
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["downstream"] == [
        "pg://billing/orders#ch_2",
        "s3://reports/2026-01.json",
    ]


def test_subject_with_key_from_environment(
    store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`subject` pseudonymises with the key from the environment and lists derived data."""
    monkeypatch.setenv("FLOWTRACE_LINEAGE_KEY", KEY.hex())
    argv = [
        "lineage",
        "subject",
        "alice@example.com",
        "--from",
        str(store),
        "--tenant",
        "acme",
        "--json",
    ]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["records"] == [
        "stripe:charge/ch_1",
        "pg://billing/orders#ch_1",
        "s3://reports/2026-01.json",
    ]
    assert data["subject"] == lineage.Pseudonymizer(KEY).pseudonym("alice@example.com", "acme")
    assert "alice" not in json.dumps(data)
    # The pseudonym itself works without the key.
    monkeypatch.delenv("FLOWTRACE_LINEAGE_KEY")
    assert (
        main(["lineage", "subject", data["subject"], "--from", str(store), "--tenant", "acme"]) == 0
    )
    assert "3 record(s)" in capsys.readouterr().out


def test_subject_without_key_is_refused(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A raw subject with no key configured exits 2 and says how to fix it."""
    assert main(["lineage", "subject", "alice", "--from", str(store), "--tenant", "acme"]) == 2
    assert "FLOWTRACE_LINEAGE_KEY" in capsys.readouterr().err


def test_unknown_id_and_missing_file(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown id or a missing file exits 1 with a clear message."""
    assert main(["lineage", "trace", "nope", "--from", str(store)]) == 1
    assert "'nope'" in capsys.readouterr().err
    assert main(["lineage", "trace", "x", "--from", str(store / "missing")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_demo_step_output_is_queryable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The demo step passes and the CLI answers from the buffer it leaves behind."""
    from flowtrace._demo import lineage as demo

    said: list[str] = []
    demo.run(tmp_path, said.append)
    assert any("201 of 201 edges delivered" in line for line in said)
    argv = ["lineage", "trace", "warehouse://revenue#2026-01", "--from", str(tmp_path / "lineage")]
    assert main([*argv, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["sources"]) == 200


def test_lineage_without_a_query_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    """`flowtrace lineage` alone prints its usage and exits 2."""
    assert main(["lineage"]) == 2
    assert "trace" in capsys.readouterr().out


def test_export_merges_sources_into_deduplicated_json_lines(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`export` merges sources (duplicates dropped) into a file `trace --from` reads."""
    out = tmp_path / "all.jsonl"
    assert (
        main(["lineage", "export", "--from", str(store), "--from", str(store), "--to", str(out)])
        == 0
    )
    assert "wrote 3 edges" in capsys.readouterr().out
    assert len(out.read_text().splitlines()) == 3
    assert (
        main(["lineage", "trace", "s3://reports/2026-01.json", "--from", str(out), "--json"]) == 0
    )
    assert len(json.loads(capsys.readouterr().out)["sources"]) == 2


def test_ingest_then_query_the_store_with_db(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`lineage ingest` fills a SQLite store once; --db answers as --from does."""
    db = str(tmp_path / "lineage.db")
    assert main(["lineage", "ingest", str(store), "--db", db]) == 0
    assert main(["lineage", "ingest", str(store), "--db", db]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(": 0 new edge(s)")
    report = "s3://reports/2026-01.json"
    assert main(["lineage", "trace", report, "--from", str(store), "--json"]) == 0
    from_file = json.loads(capsys.readouterr().out)
    assert main(["lineage", "trace", report, "--db", db, "--json"]) == 0
    from_db = json.loads(capsys.readouterr().out)
    assert from_file["tree"] == from_db["tree"]
    assert sorted(from_file["sources"]) == sorted(from_db["sources"])
    assert main(["lineage", "trace", "no-such-id", "--db", db]) == 1
