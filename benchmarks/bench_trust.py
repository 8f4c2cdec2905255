"""Transaction tokens: mint and verify per hop, against named baselines in the same run.

* mint: ``ft.trust.mint`` vs PyJWT's own ``jwt.encode`` of the same claims and key.
* verify (first sight): ``Verifier.verify`` of a fresh token vs PyJWT's own ``jwt.decode``
  of the same token (signature, audience, expiry) — the ratio is flowtrace's checks on top.
* verify (cached): the same token again (a batch of messages carrying one token).
* per hop: a ``@consumer(trust="required")`` call vs the bare ``@consumer`` on the same
  message (first sight of each token, and cached).

Interleaved rounds (benchmarks/_timing.py); medians and median ratios.
"""

from __future__ import annotations

import jwt
from _timing import interleaved

import flowtrace as ft

AUD = "bench.example"


class Message:
    __slots__ = ("body", "headers")

    def __init__(self, body: bytes, headers: dict[str, str]) -> None:
        self.body = body
        self.headers = headers


def main() -> None:
    for alg in ("EdDSA", "ES256"):
        run(alg)


def run(alg: str) -> None:
    signer = ft.trust.Signer.generate(kid="k1", alg=alg)
    public = signer.public_key()
    verifier = ft.trust.Verifier(ft.trust.jwks(signer), audience=AUD, cache_size=0)
    cached = ft.trust.Verifier(ft.trust.jwks(signer), audience=AUD)
    with ft.context(tenant="acme", user="u-1", purpose="billing", correlation_id="c-1"):
        token = ft.trust.mint(signer, audience=AUD)
        headers = ft.inject({}, identity=True, txn_token=token)
    claims = jwt.decode(token, options={"verify_signature": False})
    key = signer.key()
    header = {"kid": "k1", "typ": "txntoken+jwt"}
    ctx = ft.FlowContext(tenant="acme", user="u-1", purpose="billing", correlation_id="c-1")

    mint = interleaved(
        lambda: ft.trust.mint(signer, audience=AUD, context=ctx),
        lambda: jwt.encode(claims, key, algorithm=alg, headers=header),
        number=300, rounds=15,
    )
    first = interleaved(
        lambda: verifier.verify(token),
        lambda: jwt.decode(token, public, algorithms=[alg], audience=AUD),
        number=300, rounds=15,
    )
    hit = interleaved(
        lambda: cached.verify(token),
        lambda: jwt.decode(token, public, algorithms=[alg], audience=AUD),
        number=300, rounds=15,
    )

    @ft.consumer("bare")
    def bare(message: Message) -> None: ...

    @ft.consumer("trusted", trust="required", verifier=verifier)
    def trusted_uncached(message: Message) -> None: ...

    @ft.consumer("trusted-cached", trust="required", verifier=cached)
    def trusted_cached(message: Message) -> None: ...

    message = Message(b"{}", headers)
    hop_first = interleaved(lambda: trusted_uncached(message), lambda: bare(message),
                            number=300, rounds=15)
    hop_cached = interleaved(lambda: trusted_cached(message), lambda: bare(message),
                             number=2000, rounds=15)
    print(f"[{alg}]")
    print(f"  mint                 {mint.ours_us:8.1f} us   PyJWT encode {mint.base_us:8.1f} us"
          f"   ratio {mint.ratio:.2f}")
    print(f"  verify, first sight  {first.ours_us:8.1f} us   PyJWT decode {first.base_us:8.1f} us"
          f"   ratio {first.ratio:.2f}")
    print(f"  verify, cached       {hit.ours_us:8.2f} us   PyJWT decode {hit.base_us:8.1f} us"
          f"   ratio {hit.ratio:.4f}")
    print(f"  hop, first sight     {hop_first.ours_us:8.1f} us   bare @consumer "
          f"{hop_first.base_us:6.2f} us   +{hop_first.ours_us - hop_first.base_us:.1f} us")
    print(f"  hop, cached token    {hop_cached.ours_us:8.2f} us   bare @consumer "
          f"{hop_cached.base_us:6.2f} us   +{hop_cached.ours_us - hop_cached.base_us:.2f} us")


if __name__ == "__main__":
    main()
