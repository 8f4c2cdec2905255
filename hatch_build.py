"""Hatchling build hook: compile the optional C accelerators.

* ``flowtrace._speedups``: the hot path of ``flowtrace.context`` scopes;
* ``flowtrace.crypto._fastpath``: the common call of ``FieldEncryptor.encrypt``/``decrypt``.

Each extension is compiled in place next to its source with the building interpreter's
own compiler and flags (``sysconfig``), so editable installs (``pip install -e .``, used
by ``python3 dev.py``) import it straight from the source tree, and regular wheels
(``pip wheel .``) ship it as a platform-specific wheel.

If compilation fails (no C compiler, no Python headers) the build prints a warning and
carries on: flowtrace then uses its pure-Python code, which behaves the same, only
slower. ``FLOWTRACE_PURE_PYTHON=1`` at build time skips compilation.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCES = (
    Path("src", "flowtrace", "_speedups.c"),
)


def _config(name: str) -> list[str]:
    return shlex.split(sysconfig.get_config_var(name) or "")


def compile_extension(root: Path, relative: Path) -> Path:
    """Compile one C source next to itself; return the extension's path. Raises on failure."""
    source = root / relative
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    target = source.with_name(source.stem + suffix)
    include = sysconfig.get_paths()["include"]
    cc = _config("CC") or ["cc"]
    ldshared = _config("LDSHARED") or [*cc, "-shared"]
    cflags = [*_config("CFLAGS"), *_config("CCSHARED"), "-I" + include]
    with tempfile.TemporaryDirectory() as tmp:
        obj = Path(tmp, source.stem + ".o")
        built = Path(tmp, target.name)
        for cmd in (
            [*cc, *cflags, "-c", str(source), "-o", str(obj)],
            [*ldshared, *_config("LDFLAGS"), str(obj), "-o", str(built)],
        ):
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
            if done.returncode:
                raise RuntimeError(f"{shlex.join(cmd)} failed:\n{done.stdout}{done.stderr}")
        # Replace atomically: a running interpreter may have the old one mapped.
        os.replace(built, target)
    return target


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Compile the accelerators for wheel and editable builds; never fail the build for them."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return  # the sdist ships the C sources, not binaries
        if os.environ.get("FLOWTRACE_PURE_PYTHON", "") not in ("", "0"):
            self.app.display_info("flowtrace: FLOWTRACE_PURE_PYTHON set, not compiling C code")
            return
        for relative in SOURCES:
            try:
                target = compile_extension(Path(self.root), relative)
            except Exception as exc:  # no compiler, no headers, ...: fall back, loudly
                message = (
                    f"flowtrace: could not compile the optional C accelerator {relative}; "
                    f"its pure-Python fallback will be used. {exc}"
                )
                self.app.display_warning(message)
                continue
            self.app.display_info(f"flowtrace: built {target.name}")
            if version == "editable":
                continue  # imported from src/ through the editable path hook
            # The .so is git-ignored (so not picked up by default): include it explicitly
            # and tag the wheel for this interpreter and platform.
            package = relative.parent.relative_to("src").as_posix()
            build_data["force_include"][str(target)] = f"{package}/{target.name}"
            build_data["pure_python"] = False
            build_data["infer_tag"] = True
