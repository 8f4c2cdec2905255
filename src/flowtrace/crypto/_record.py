"""Encrypt / decrypt the restricted fields of a record, as a classification Schema says."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..classify import Level

if TYPE_CHECKING:
    from ..classify import Schema
    from ._encryptor import FieldEncryptor

__all__ = ["decrypt_record", "encrypt_record"]


def _walk(value: Any, path: str, schema: Schema, apply: Callable[[Any, str], Any]) -> Any:
    if path:
        found = schema.lookup(path)
        if found is not None and found.level >= Level.RESTRICTED:
            return None if value is None else apply(value, path)
    if isinstance(value, Mapping):
        return {
            key: _walk(item, f"{path}.{key}" if path else str(key), schema, apply)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_walk(item, path, schema, apply) for item in value]
    return value


def encrypt_record(
    encryptor: FieldEncryptor,
    record: Mapping[str, Any],
    schema: Schema,
    *,
    context: Mapping[str, str] | None = None,
    subject: str | None = None,
    deterministic: bool = False,
) -> dict[str, Any]:
    """A copy of ``record`` whose RESTRICTED fields are tokens (the input is not mutated).

    Fields are named by dotted path (``"patient.ssn"``), which is also the token's bound
    field; list items share their list's path. ``None`` values stay ``None``. Non-string
    values are encrypted as JSON and come back with their type.

    Example::

        import flowtrace as ft
        from flowtrace.crypto import encrypt_record
        from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider

        vault = KeyVault(LocalKeyProvider.generate("kek"), kek_id="kek")
        schema = ft.Schema.from_dict({"ssn": "restricted:pii"})
        with ft.context(tenant="acme"):
            record = {"ssn": "123-45-6789", "plan": "pro"}
            stored = encrypt_record(FieldEncryptor(vault), record, schema)
        assert stored["plan"] == "pro" and stored["ssn"] != "123-45-6789"
    """

    def apply(value: Any, path: str) -> str:
        return encryptor.encrypt_value(
            value, field=path, context=context, subject=subject, deterministic=deterministic
        )

    result: dict[str, Any] = _walk(record, "", schema, apply)
    return result


def decrypt_record(
    encryptor: FieldEncryptor,
    record: Mapping[str, Any],
    schema: Schema,
    *,
    context: Mapping[str, str] | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """The inverse of :func:`encrypt_record`; raises on the first token that fails
    (for example :class:`~flowtrace.errors.KeyDestroyedError` after a shred).

    Example::

        import flowtrace as ft
        from flowtrace.crypto import decrypt_record, encrypt_record
        from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider

        vault = KeyVault(LocalKeyProvider.generate("kek"), kek_id="kek")
        enc = FieldEncryptor(vault)
        schema = ft.Schema.from_dict({"ssn": "restricted:pii"})
        with ft.context(tenant="acme"):
            stored = encrypt_record(enc, {"ssn": "123-45-6789"}, schema)
            plain = decrypt_record(enc, stored, schema, reason="tax filing")
        assert plain == {"ssn": "123-45-6789"}
    """

    def apply(value: Any, path: str) -> Any:
        return encryptor.decrypt_value(value, field=path, context=context, reason=reason)

    result: dict[str, Any] = _walk(record, "", schema, apply)
    return result
