"""Type stub for the optional C fast path of FieldEncryptor (see ``_fastpath.c``)."""

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

class EntryBase:
    keyring: Any
    keys: Any
    prefixes: tuple[bytes, ...]
    tails: dict[str, bytes]
    uses: int
    loaded_at: float
    version: int

class EncryptorBase:
    def encrypt(
        self,
        value: str,
        *,
        field: str,
        context: Mapping[str, str] | None = None,
        subject: str | None = None,
        deterministic: bool = False,
    ) -> str: ...
    def decrypt(
        self,
        token: str,
        *,
        field: str,
        context: Mapping[str, str] | None = None,
        reason: str | None = None,
    ) -> str: ...
    def _bind_fast_path(self, *args: object) -> None: ...

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
