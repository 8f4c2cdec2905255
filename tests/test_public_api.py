"""The public surface is deliberate: __all__ lists exactly the public names, sorted."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from types import ModuleType

import pytest

import flowtrace

NAMESPACES = [
    "flowtrace",
    "flowtrace.audit",
    "flowtrace.crypto",
    "flowtrace.errors",
    "flowtrace.lineage",
    "flowtrace.map",
    "flowtrace.otel",
    "flowtrace.propagation",
    "flowtrace.testing",
]


def _public_names(module: ModuleType) -> set[str]:
    """Public attributes defined or re-exported on purpose (not submodules, not typing)."""
    names = set()
    for name, value in vars(module).items():
        if name.startswith("_") or inspect.ismodule(value):
            continue
        if name in ("annotations", "TYPE_CHECKING"):  # typing/__future__ plumbing
            continue
        owner = getattr(value, "__module__", module.__name__) or ""
        if callable(value) and not owner.startswith("flowtrace"):
            continue  # imported helpers such as Callable, dataclass
        names.add(name)
    return names


@pytest.mark.parametrize("name", NAMESPACES)
def test_all_is_sorted_and_resolves(name: str) -> None:
    """Every name in __all__ exists, and __all__ is sorted without duplicates."""
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert len(exported) == len(set(exported))
    assert exported == sorted(exported)
    missing = [n for n in exported if not hasattr(module, n)]
    assert missing == []


# Namespaces that only re-export: everything public in them must be listed in __all__.
REEXPORTING = ["flowtrace", "flowtrace.audit", "flowtrace.crypto", "flowtrace.errors",
               "flowtrace.lineage", "flowtrace.map"]


@pytest.mark.parametrize("name", REEXPORTING)
def test_all_lists_every_public_flowtrace_name(name: str) -> None:
    """No flowtrace-defined public name is left out of __all__."""
    module = importlib.import_module(name)
    unlisted = sorted(_public_names(module) - set(module.__all__))
    assert unlisted == []


def test_capability_namespaces_reachable_from_the_package() -> None:
    """ft.crypto, ft.audit and ft.lineage work after a bare `import flowtrace`."""
    code = (
        "import flowtrace as ft; "
        "assert ft.crypto.FieldEncryptor and ft.audit.AuditLog and ft.lineage.LineageGraph "
        "and ft.map.ObservedMap"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_error_derives_from_flowtrace_error() -> None:
    """Every exception class in flowtrace.errors is rooted at FlowtraceError."""
    from flowtrace import errors

    for name in errors.__all__:
        value = getattr(errors, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert issubclass(value, flowtrace.FlowtraceError), name


def test_error_tree_docstring_names_every_error() -> None:
    """The tree drawn in errors.py's docstring names every exception class."""
    from flowtrace import errors

    doc = errors.__doc__ or ""
    classes = [
        n
        for n in errors.__all__
        if isinstance(getattr(errors, n), type) and issubclass(getattr(errors, n), BaseException)
    ]
    assert [n for n in classes if n not in doc] == []


def test_configure_rejects_a_scrubber_that_is_not_one() -> None:
    """configure(scrubber=...) validates at configure time, not at first use."""
    with pytest.raises(flowtrace.ConfigError, match="Scrubber"):
        flowtrace.configure(scrubber=lambda value: value)
    scrubber = flowtrace.Scrubber()
    assert flowtrace.configure(scrubber=scrubber).scrubber is scrubber
