"""Find the restricted fields of a record, as a classification Schema says.

FieldEncryptor.encrypt_record / decrypt_record apply encryption to what this walk finds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..classify import Level

if TYPE_CHECKING:
    from ..classify import Schema

__all__ = ["walk_restricted"]


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


def walk_restricted(
    record: Mapping[str, Any], schema: Schema, apply: Callable[[Any, str], Any]
) -> dict[str, Any]:
    """A copy of ``record`` with ``apply(value, dotted_path)`` in place of every non-None
    value of a RESTRICTED field (the input is not mutated)."""
    result: dict[str, Any] = _walk(record, "", schema, apply)
    return result
