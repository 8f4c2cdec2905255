"""``flowtrace scrub``: streams JSON-lines and text logs, summary on stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from flowtrace.cli import main

CARD = "4111111111111111"


def test_scrubs_json_lines_and_text_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """JSON lines are scrubbed as data, other lines (invalid JSON too) as text."""
    src = tmp_path / "app.log"
    src.write_text(
        json.dumps({"msg": "paid", "card": CARD, "password": "pw", "n": 1})
        + "\n"
        + "plain text from a@b.io\r\n"
        + '{"broken": "a@b.io"\n'
        + "last line without newline 203.0.113.5",
        encoding="utf-8",
    )
    out = tmp_path / "clean.log"
    assert main(["scrub", str(src), "-o", str(out)]) == 0
    lines = out.read_bytes().decode("utf-8").split("\n")
    assert json.loads(lines[0]) == {
        "msg": "paid",
        "card": "[REDACTED:card]",
        "password": "[REDACTED:credential]",
        "n": 1,
    }
    assert lines[1] == "plain text from [REDACTED:email]\r"
    assert lines[2] == '{"broken": "[REDACTED:email]"'
    assert lines[3] == "last line without newline [REDACTED:ipv4]"
    err = capsys.readouterr().err
    assert "4 line(s), scrubbed 5 value(s)" in err
    assert "pii" in err
    assert "pci" in err
    assert "credential" in err
    assert "network" in err
    assert CARD not in err
    assert "a@b.io" not in err


def test_report_only_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--report-only prints the summary and produces no output."""
    src = tmp_path / "app.log"
    src.write_text("a@b.io\n")
    assert main(["scrub", str(src), "--report-only"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "would scrub 1 value(s)" in captured.err


def test_missing_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing input exits 2 with a message naming the file."""
    assert main(["scrub", str(tmp_path / "nope.log")]) == 2
    assert "nope.log" in capsys.readouterr().err


def _run(args: list[str], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    code = (
        "import resource, sys; from flowtrace.cli import main; rc = main(sys.argv[1:]); "
        "print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr);"
        " sys.exit(rc)"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        input=stdin,
        capture_output=True,
        timeout=240,
        check=True,
    )


def test_stdin_to_stdout_keeps_invalid_utf8(tmp_path: Path) -> None:
    """'-' reads stdin, writes stdout; undecodable bytes pass through, secrets do not."""
    result = _run(["scrub", "-"], b"\xff\xfe raw a@b.io\n")
    assert result.stdout == b"\xff\xfe raw [REDACTED:email]\n"


def test_memory_stays_constant_on_large_input(tmp_path: Path) -> None:
    """A 48 MB log streams through with peak memory far below its size."""
    small = tmp_path / "small.log"
    small.write_text("x\n")
    big = tmp_path / "big.log"
    line = ("GET /api/orders status ok " * 10_000)[:262_143] + "\n"
    with big.open("w") as fh:
        for _ in range(192):
            fh.write(line)
        fh.write(f"card {CARD}\n")

    def peak(path: Path) -> int:
        err = _run(["scrub", str(path), "-o", str(tmp_path / "out.log")]).stderr.decode()
        return int(err.rsplit("MAXRSS", 1)[1].split()[0])  # KiB on Linux

    baseline = peak(small)
    large = peak(big)
    assert (tmp_path / "out.log").read_text().endswith("card [REDACTED:card]\n")
    assert large - baseline < 16 * 1024, (baseline, large)
