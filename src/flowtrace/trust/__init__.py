"""Zero trust across hops: signed, expiring, audience-bound flow context.

Implements the transaction tokens of draft-ietf-oauth-transaction-tokens: the edge mints
a short-lived JWT (:func:`mint`) from the flow context after verifying the external
credential; every hop verifies it (:class:`Verifier`) against the trust domain's JWKS
(:func:`jwks`). The JWS work is PyJWT's (``pip install 'flowtrace-sdk[jwt]'``).

May import: :mod:`flowtrace.errors`, :mod:`flowtrace.flowcontext`. Nothing above it.
"""

from __future__ import annotations

from ._keys import ALGORITHMS, Signer, jwks, public_keys
from ._mint import HEADER, TYP, mint
from ._verify import MAX_SKEW, TxnToken, Verifier

__all__ = [
    "ALGORITHMS",
    "HEADER",
    "MAX_SKEW",
    "Signer",
    "TYP",
    "TxnToken",
    "Verifier",
    "jwks",
    "mint",
    "public_keys",
]

for _name in __all__:
    _value = globals()[_name]
    if hasattr(_value, "__module__") and isinstance(_value, type | type(mint)):
        _value.__module__ = __name__
del _name, _value
