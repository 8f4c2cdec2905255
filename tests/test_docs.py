"""The documentation is tested product: its examples run and its reference builds strictly.

* The Python blocks of the runnable pages execute as written, top to bottom in one fresh
  interpreter; a block opening with ``# test_<name>.py`` is a pytest file the page tells
  the reader to save and run, so it is saved and run with pytest.
* ``mkdocs build --strict`` builds the site offline, with the API reference generated from
  docstrings by mkdocstrings; every public name of every reference page is in it.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RUNNABLE = ["getting-started.md", "configure.md", "trust.md", "integrations.md"]
REFERENCE = sorted((DOCS / "reference").glob("*.md"))
TEST_FILE = re.compile(r"#\s*(test_\w+\.py)\s*$")


def python_blocks(page: Path) -> list[tuple[int, str]]:
    """(first line number, code) of every fenced ```python block of ``page``."""
    blocks: list[tuple[int, str]] = []
    lines = page.read_text().splitlines()
    start: int | None = None
    for number, line in enumerate(lines, 1):
        if start is None and line.strip() == "```python":
            start = number + 1
        elif start is not None and line.strip() == "```":
            blocks.append((start, "\n".join(lines[start - 1 : number - 1]) + "\n"))
            start = None
    assert start is None, f"{page.name}: unclosed ```python block at line {start}"
    return blocks


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.pop("PYTHONPATH", None)
    return env


def _check(result: subprocess.CompletedProcess[str], what: str) -> None:
    assert result.returncode == 0, f"{what} failed:\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize("page", RUNNABLE)
def test_page_runs_as_written(page: str, tmp_path: Path) -> None:
    """Every Python block of the page runs; its pytest files pass under pytest."""
    blocks = python_blocks(DOCS / page)
    assert blocks, f"{page} has no python block"
    script: list[str] = []
    test_files: list[str] = []
    for start, code in blocks:
        first = code.splitlines()[0]
        named = TEST_FILE.fullmatch(first)
        if named:
            (tmp_path / named.group(1)).write_text(code)
            test_files.append(named.group(1))
        else:
            # pad with blank lines so a traceback's line numbers are the page's
            script.append("\n" * (start - 1 - sum(c.count("\n") for c in script)) + code)
    (tmp_path / "page.py").write_text("".join(script))
    _check(
        subprocess.run(
            [sys.executable, "page.py"], cwd=tmp_path, env=_env(),
            capture_output=True, text=True, timeout=300,
        ),
        f"{page} (line numbers are the page's)",
    )
    for name in test_files:
        _check(
            subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", name],
                cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300,
            ),
            f"{page}: pytest {name}",
        )


def test_getting_started_says_to_install_pytest_before_its_fixtures() -> None:
    """The page states ``pip install pytest`` before the first block using a fixture."""
    text = (DOCS / "getting-started.md").read_text()
    assert "pip install pytest" in text
    assert text.index("pip install pytest") < text.index("flowtrace_capture)")


def test_reference_pages_are_generated_not_written() -> None:
    """Each reference page is a title and one ``::: module`` directive, nothing by hand."""
    assert REFERENCE, "docs/reference/ is empty"
    for page in REFERENCE:
        lines = [line for line in page.read_text().splitlines() if line.strip()]
        module = page.stem
        assert lines == [f"# `{module}`", f"::: {module}"], page.name


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built by ``mkdocs build --strict`` (offline: built-in theme, no inventories)."""
    out = tmp_path_factory.mktemp("site")
    _check(
        subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
            cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600,
        ),
        "mkdocs build --strict",
    )
    return out


@pytest.mark.parametrize("page", REFERENCE, ids=[p.stem for p in REFERENCE])
def test_reference_documents_every_public_name(site: Path, page: Path) -> None:
    """The generated reference page has an entry for every name in the module's __all__."""
    module = importlib.import_module(page.stem)
    html = (site / "reference" / page.stem / "index.html").read_text()
    anchors = set(re.findall(r'id="([^"]+)"', html))
    # dunders (``__version__``) are described in the module docstring, not listed
    public = [name for name in module.__all__ if not name.startswith("__")]
    missing = [name for name in public if f"{page.stem}.{name}" not in anchors]
    assert missing == []


def test_configure_reference_has_a_row_for_every_option() -> None:
    """docs/configure.md's table lists exactly the options configure() accepts."""
    import flowtrace

    options = {f.name for f in dataclasses.fields(flowtrace.Settings)} - {"extras"}
    text = (DOCS / "configure.md").read_text()
    rows = set(re.findall(r"^\| `(\w+)` \|", text, flags=re.MULTILINE))
    assert rows == options


def test_index_links_the_reference_and_configure() -> None:
    """docs/index.md leads to the configure() reference and every API reference page."""
    index = (DOCS / "index.md").read_text()
    assert "(configure.md)" in index
    for page in REFERENCE:
        assert f"(reference/{page.name})" in index, page.name
