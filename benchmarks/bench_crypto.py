"""Field encryption: FieldEncryptor vs raw AESGCM, the AWS Encryption SDK and Tink.

Targets (issue 11, pure Python): encrypt+decrypt of a 32-byte str field with a cached DEK
<= 3x raw AESGCM (cryptography) encrypt+decrypt with an os.urandom nonce, and >= 50x faster
than aws-encryption-sdk with a caching CMM and a raw AES wrapping key; token overhead
<= 60 bytes for a 32-byte value (issue 4; Tink's and the AWS SDK's overhead reported beside
it). One run measures everything; each ratio comes from interleaved rounds (_timing.py).
"""

from __future__ import annotations

import os
import platform
import sys
import time
from base64 import urlsafe_b64encode
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from _timing import interleaved, median_us
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import flowtrace
from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider

VALUE = "0123456789abcdef0123456789abcdef"  # 32 bytes
DATA = VALUE.encode()
NONCE = os.urandom(12)
REPEAT = 15


Case = Callable[[], object]


def ours() -> tuple[Case, Case, Case, Case, int, int]:
    """Round trips (plain, with a record context), encrypt and decrypt alone; then the
    token overheads."""
    enc = FieldEncryptor(KeyVault(LocalKeyProvider.generate("kek"), kek_id="kek"))
    scope = flowtrace.context(tenant="acme")
    scope.__enter__()
    token = enc.encrypt(VALUE, field="email")
    enc.decrypt(token, field="email")  # warm the DEK cache

    def roundtrip() -> object:
        return enc.decrypt(enc.encrypt(VALUE, field="email"), field="email")

    def bound_roundtrip() -> object:  # the record-binding recipe: context={"record": id}
        token = enc.encrypt(VALUE, field="email", context={"record": "42"})
        return enc.decrypt(token, field="email", context={"record": "42"})

    def encrypt() -> object:
        return enc.encrypt(VALUE, field="email")

    def decrypt() -> object:
        return enc.decrypt(token, field="email")

    text_overhead = len(token) - len(DATA)
    binary_overhead = len(token) * 3 // 4 - len(DATA)
    return roundtrip, bound_roundtrip, encrypt, decrypt, binary_overhead, text_overhead


def raw_aesgcm() -> tuple[Case, Case, Case, Case]:
    """Bare AESGCM: round trip, round trip with a storable text form, encrypt, decrypt."""
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    aad = b"acme\x00email"
    sealed = aead.encrypt(NONCE, DATA, aad)

    def bare() -> object:
        nonce = os.urandom(12)
        return aead.decrypt(nonce, aead.encrypt(nonce, DATA, aad), aad)

    def encrypt() -> object:
        nonce = os.urandom(12)
        return nonce + aead.encrypt(nonce, DATA, aad)

    def decrypt() -> object:
        return aead.decrypt(NONCE, sealed, aad)

    def stored() -> object:
        # What a hand-rolled field encryption minimally does: str in, text out and back.
        nonce = os.urandom(12)
        blob = urlsafe_b64encode(nonce + aead.encrypt(nonce, VALUE.encode(), aad))
        raw = __import__("base64").urlsafe_b64decode(blob)
        return aead.decrypt(raw[:12], raw[12:], aad).decode()

    return bare, stored, encrypt, decrypt


def aws_sdk() -> tuple[Callable[[], object], int] | None:
    try:
        import aws_encryption_sdk
        from aws_encryption_sdk.identifiers import (
            CommitmentPolicy,
            EncryptionKeyType,
            WrappingAlgorithm,
        )
        from aws_encryption_sdk.internal.crypto.wrapping_keys import WrappingKey
        from aws_encryption_sdk.key_providers.raw import RawMasterKeyProvider
    except ImportError as exc:
        print(f"aws-encryption-sdk not installed ({exc}); pip install 'flowtrace[bench]'")
        return None

    class StaticRawAes(RawMasterKeyProvider):  # type: ignore[misc]
        provider_id = "flowtrace-bench"
        _key = os.urandom(32)

        def _get_raw_key(self, key_id: bytes) -> Any:
            return WrappingKey(
                wrapping_algorithm=WrappingAlgorithm.AES_256_GCM_IV12_TAG16_NO_PADDING,
                wrapping_key=self._key,
                wrapping_key_type=EncryptionKeyType.SYMMETRIC,
            )

    # The raw AES "keyring" of the SDK's built-in (non-MPL) API: a raw master key provider.
    provider = StaticRawAes()
    provider.add_master_key(b"kek")
    cmm = aws_encryption_sdk.CachingCryptoMaterialsManager(
        master_key_provider=provider,
        cache=aws_encryption_sdk.LocalCryptoMaterialsCache(capacity=100),
        max_age=600.0,
        max_messages_encrypted=2**32,
    )
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    context = {"tenant": "acme", "field": "email"}

    def roundtrip() -> object:
        ciphertext, _ = client.encrypt(
            source=DATA, materials_manager=cmm, encryption_context=context, frame_length=0
        )
        plaintext, _ = client.decrypt(source=ciphertext, materials_manager=cmm)
        return plaintext

    ciphertext, _ = client.encrypt(
        source=DATA, materials_manager=cmm, encryption_context=context, frame_length=0
    )
    return roundtrip, len(ciphertext) - len(DATA)


def tink_overheads() -> tuple[int, int, Callable[[], object]] | None:
    try:
        import tink
        from tink import aead
    except ImportError as exc:
        print(f"tink not installed ({exc}); pip install 'flowtrace[bench]'")
        return None
    aead.register()
    plain = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM).primitive(aead.Aead)
    direct = len(plain.encrypt(DATA, b"acme/email")) - len(DATA)
    # Envelope mode: a KEK AEAD (standing in for a KMS) wraps a fresh DEK for every value.
    kek = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM).primitive(aead.Aead)
    envelope = aead.KmsEnvelopeAead(aead.aead_key_templates.AES256_GCM, kek)
    sealed = envelope.encrypt(DATA, b"acme/email")

    def roundtrip() -> object:
        return envelope.decrypt(envelope.encrypt(DATA, b"acme/email"), b"acme/email")

    return direct, len(sealed) - len(DATA), roundtrip


def main() -> int:
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{sys.version.split()[0]}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}"
    )
    flowtrace_rt, bound_rt, enc_only, dec_only, binary_overhead, text_overhead = ours()
    bare, stored, raw_enc, raw_dec = raw_aesgcm()
    ours_us, raw_us, raw_ratio = interleaved(flowtrace_rt, bare, number=5_000, rounds=31)
    cpu_us, raw_cpu_us, cpu_ratio = interleaved(
        flowtrace_rt, bare, number=5_000, rounds=31, timer=time.thread_time
    )
    _, raw_text_us, text_ratio = interleaved(flowtrace_rt, stored, number=5_000, rounds=11)
    bound_us, _, bound_ratio = interleaved(bound_rt, bare, number=5_000, rounds=11)
    enc_us, raw_enc_us, enc_ratio = interleaved(enc_only, raw_enc, number=5_000, rounds=11)
    dec_us, raw_dec_us, dec_ratio = interleaved(dec_only, raw_dec, number=5_000, rounds=11)
    print(f"raw AESGCM encrypt+decrypt (bytes)            {raw_us:8.2f} us")
    print(f"raw AESGCM + nonce||ct base64url (str)        {raw_text_us:8.2f} us")
    print(f"flowtrace FieldEncryptor encrypt+decrypt      {ours_us:8.2f} us")
    print(f"  ratio vs raw AESGCM (target <= 3.0)         {raw_ratio:8.2f}x")
    print(f"  same, thread CPU time: {cpu_us:.2f} / {raw_cpu_us:.2f} us = {cpu_ratio:.2f}x")
    print(f"  ratio vs raw AESGCM + text form             {text_ratio:8.2f}x")
    print(f"  with context={{'record': '42'}}, for info     {bound_us:8.2f} us")
    print(f"  ratio vs raw AESGCM                         {bound_ratio:8.2f}x")
    print(f"encrypt alone vs raw AESGCM encrypt, for info {enc_us:8.2f} us / {raw_enc_us:.2f} us"
          f" = {enc_ratio:.2f}x")
    print(f"decrypt alone vs raw AESGCM decrypt, for info {dec_us:8.2f} us / {raw_dec_us:.2f} us"
          f" = {dec_ratio:.2f}x")
    sdk = aws_sdk()
    sdk_overhead = None
    if sdk is not None:
        sdk_rt, sdk_overhead = sdk
        sdk_us, _, inverse = interleaved(sdk_rt, flowtrace_rt, number=200, rounds=9)
        print(f"aws-encryption-sdk caching CMM, raw AES key   {sdk_us:8.2f} us")
        print(f"  flowtrace is faster by (target >= 50)       {inverse:8.1f}x")
    tink_result = tink_overheads()
    print("token overhead for a 32-byte value (target <= 60 bytes):")
    print(f"  flowtrace token bytes                       {binary_overhead:5d} bytes")
    print(f"  flowtrace text token (base64url)            {text_overhead:5d} characters")
    if sdk_overhead is not None:
        print(f"  aws-encryption-sdk message                  {sdk_overhead:5d} bytes")
    if tink_result is not None:
        direct, envelope, tink_rt = tink_result
        print(f"  tink AEAD (AES256_GCM, no envelope)         {direct:5d} bytes")
        print(f"  tink KmsEnvelopeAead                        {envelope:5d} bytes")
        tink_us = median_us(tink_rt, number=5_000, repeat=REPEAT)
        print(f"tink KmsEnvelopeAead encrypt+decrypt (local KEK) {tink_us:8.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
