"""Type stub for the optional C fast path of FieldEncryptor (see ``_fastpath.c``).

The two classes behave as ``_cache._PyEntryBase`` and ``_encryptor._PyEncryptorBase``,
which are what mypy checks against (their attributes and signatures are not repeated).
"""

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

class EntryBase: ...
class EncryptorBase: ...

def configure(
    var: ContextVar[Any],
    py_encrypt: Callable[..., str],
    py_decrypt: Callable[..., str],
    make_tail: Callable[[Any, str], bytes],
    report: Callable[[Any, str, str, str | None], None],
    listening: Callable[[], bool],
    urandom: Callable[[int], bytes],
) -> None: ...
def b64url_encode(data: bytes, /) -> str: ...
def b64url_decode(text: str, /) -> bytes | None: ...
