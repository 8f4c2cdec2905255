"""Every public name carries a docstring with a short example.

Public names are those in ``__all__`` of ``flowtrace`` and its public namespaces. Classes
and functions are read at run time (their own ``__doc__``, never one inherited or
generated, e.g. by ``dataclass``); constants, type aliases and instances through their
attribute docstring (the string under the assignment), read by griffe exactly as the
generated API reference shows it.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
NAMESPACES = [
    "flowtrace",
    "flowtrace.audit",
    "flowtrace.classify",
    "flowtrace.crypto",
    "flowtrace.errors",
    "flowtrace.lineage",
    "flowtrace.logging",
    "flowtrace.otel",
    "flowtrace.scrubbing",
    "flowtrace.testing",
    "flowtrace.trust",
]
# An ``Example::`` / ``Examples::`` literal block (or ``Example:`` section), or a doctest.
EXAMPLE = re.compile(r"^\s*(Examples?::?\s*$|>>> \S)", re.MULTILINE)


@functools.cache
def _static_package() -> Any:
    import griffe

    return griffe.load("flowtrace", search_paths=[str(ROOT / "src")], resolve_aliases=True)


def _own_doc(value: Any) -> str | None:
    """The docstring written for ``value`` itself (not a base class's, not generated)."""
    value = getattr(value, "__wrapped__", value)  # e.g. a pytest fixture definition
    doc = value.__dict__.get("__doc__") if isinstance(value, type) else value.__doc__
    if isinstance(value, type) and doc and doc.startswith(f"{value.__name__}("):
        return None  # the signature dataclass/namedtuple put there, not documentation
    return inspect.cleandoc(doc) if isinstance(doc, str) else None


def docstring_of(module_name: str, name: str) -> str | None:
    value = getattr(importlib.import_module(module_name), name)
    if inspect.isclass(value) or inspect.isroutine(value) or hasattr(value, "__wrapped__"):
        return _own_doc(value)
    package = _static_package()
    member = package[f"{module_name}.{name}".removeprefix("flowtrace.")]
    docstring = member.docstring
    return docstring.value if docstring is not None else None


PUBLIC = [
    (module, name)
    for module in NAMESPACES
    for name in importlib.import_module(module).__all__
]


def test_the_walk_covers_every_namespace() -> None:
    """Each public namespace contributes names (a broken import would empty the list)."""
    assert {module for module, _ in PUBLIC} == set(NAMESPACES)


@pytest.mark.parametrize(("module", "name"), PUBLIC, ids=[f"{m}.{n}" for m, n in PUBLIC])
def test_public_name_has_a_docstring_with_an_example(module: str, name: str) -> None:
    """The docstring exists, says something, and shows an example."""
    doc = docstring_of(module, name)
    assert doc, f"{module}.{name} has no docstring"
    assert EXAMPLE.search(doc), f"{module}.{name}: docstring has no Example:: block or >>> line"


def example_of(doc: str, markers: tuple[str, ...] = ("Example::", "Examples::")) -> str | None:
    """The code of the docstring's ``Example::`` literal block, dedented."""
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if line.strip() in markers:
            indent = len(line) - len(line.lstrip())
            block: list[str] = []
            for text in lines[i + 1 :]:
                if text.strip() and len(text) - len(text.lstrip()) <= indent:
                    break
                block.append(text)
            return textwrap.dedent("\n".join(block)).strip("\n") + "\n"
    return None


# Examples that name a deployment this test cannot stand in for; they are only compiled
# (the classes are tested against real PostgreSQL and moto in their own test modules).
NEEDS_OUTSIDE = {
    "flowtrace.audit.PostgresSink": "the database host the example names",
    "flowtrace.crypto.PostgresVaultStore": "the database host the example names",
    "flowtrace.crypto.AwsKmsKeyProvider": "an AWS account",
    "flowtrace.audit.PostgresCheckpoints": "the database host the example names",
    "flowtrace.audit.init_db": "the database host the example names",
    "flowtrace.errors.TenantScopeError": "the database host the example names",
    "flowtrace.errors.DatabaseCheckError": "the database host the example names",
    "flowtrace.errors.TenantRoutingError": "the database host the example names",
    "flowtrace.errors.MigrationError": "the database host the example names",
}


def _errors_setup() -> str:
    """The set-up the examples of flowtrace.errors run after (from its module docstring)."""
    import flowtrace.errors

    doc = inspect.cleandoc(flowtrace.errors.__doc__ or "")
    code = example_of(doc, ("Set-up::",))
    if code is None or "token =" not in code:
        raise AssertionError("flowtrace.errors lost its example set-up")
    return code


def _unique_examples() -> list[tuple[str, str]]:
    seen: set[str] = set()
    out = []
    for module, name in PUBLIC:
        doc = docstring_of(module, name)
        code = example_of(doc) if doc else None
        if code is None or code in seen:
            continue
        seen.add(code)
        value = getattr(importlib.import_module(module), name)
        if getattr(value, "__module__", None) == "flowtrace.errors":
            code = _errors_setup() + code
        out.append((f"{module}.{name}", code))
    return out


def _run_example(code: str, label: str) -> None:
    """Run one example in a fresh namespace; call the pytest-style tests it defines."""
    import flowtrace.testing

    namespace: dict[str, Any] = {"__name__": f"example_{label.replace('.', '_')}"}
    exec(compile(code, f"<example of {label}>", "exec"), namespace)
    for fname, func in list(namespace.items()):
        if fname.startswith("test_") and callable(func):
            params = inspect.signature(func).parameters
            if "flowtrace_capture" in params:
                flowtrace.testing.reset()
                with flowtrace.testing.Capture() as capture:
                    func(capture)
            else:
                func()


@pytest.mark.parametrize(("label", "code"), _unique_examples(), ids=lambda v: v[:60])
def test_example_runs(
    label: str, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example runs as written (in an empty directory, default settings)."""
    if label in NEEDS_OUTSIDE:
        compile(code, label, "exec")  # at least it is Python
        pytest.skip(f"needs {NEEDS_OUTSIDE[label]}")
    monkeypatch.chdir(tmp_path)
    _run_example(code, label)
