"""Where a transaction token travels: the ``Txn-Token`` header, and who can verify it.

Propagation does not import :mod:`flowtrace.trust` (it sits above): it takes any object
with the :class:`TokenVerifier` shape, of which ``flowtrace.trust.Verifier`` is one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

from ..errors import MissingTxnTokenError
from ..flowcontext import FlowContext

__all__ = ["TXN_TOKEN_HEADER", "TokenVerifier", "check_token", "token_in"]

TXN_TOKEN_HEADER: Final = "txn-token"
"""The carrier key of the transaction token (the draft's ``Txn-Token`` header).

Example::

    import flowtrace as ft
    from flowtrace.propagation import TXN_TOKEN_HEADER

    assert ft.inject({}, txn_token="eyJ...")[TXN_TOKEN_HEADER] == "eyJ..."
"""


class TokenVerifier(Protocol):
    """What a hop needs to check a transaction token: ``flowtrace.trust.Verifier`` is one.

    Example::

        import flowtrace as ft
        from flowtrace.propagation import TokenVerifier

        verifier: TokenVerifier = ft.trust.Verifier({"keys": []}, audience="d")
    """

    def verify(self, token: str, *, context: FlowContext | None = None) -> Any:
        """The verified claims, or raise a :class:`~flowtrace.errors.TxnTokenError`."""


def token_in(carrier: Any) -> str | None:
    """The ``Txn-Token`` of a header mapping, whatever the key's case (``None``: absent)."""
    if isinstance(carrier, Mapping):
        value = carrier.get(TXN_TOKEN_HEADER)
        if value is None:
            for key, item in carrier.items():
                if isinstance(key, str) and key.lower() == TXN_TOKEN_HEADER:
                    value = item
                    break
    else:
        getter = getattr(carrier, "get", None)
        value = getter(TXN_TOKEN_HEADER) if callable(getter) else None
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("ascii", "replace")
    if isinstance(value, list | tuple):  # multi-value header objects
        value = value[0] if len(value) == 1 else "<several Txn-Token values>"
    if value is None:
        return None
    return value if isinstance(value, str) else repr(value)


def check_token(carrier: Any, ctx: FlowContext, verifier: TokenVerifier) -> FlowContext:
    """``ctx`` once the carrier's token verifies and vouches for it; raise otherwise."""
    token = token_in(carrier)
    if token is None:
        raise MissingTxnTokenError(
            "the carrier has no Txn-Token header; the sender must mint one "
            "(flowtrace.trust.mint) and inject it (flowtrace.inject(headers, txn_token=...))"
        )
    verifier.verify(token, context=ctx)
    return ctx
