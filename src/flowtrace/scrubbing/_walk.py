"""One scrub call: the walk over a structure (containers, mappings, objects).

Internal to :class:`flowtrace.scrubbing.Scrubber`; see ``_engine`` for the options and
``_scan`` for the treatment of single values.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import decimal
import enum
import itertools
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from ..classify import Classification
from ._prefilter import B64_RUN, BENIGN_SHAPE, TRIGGER, encoded_runs, has_key_word
from ._scan import SKELETON, Scan
from ._strategies import DROP

__all__ = ["MISS", "Run"]

_SAFE_SCALARS = (
    type(None),
    bool,
    complex,
    _dt.datetime,
    _dt.date,
    _dt.time,
    _dt.timedelta,
    uuid.UUID,
)
_TEXT_SCALARS = (float, decimal.Decimal, enum.Enum)
"""Scanned like their text: an Enum whose value is an email, a float or Decimal that is a
card number."""
_PAIR_NAMES = ("name", "key")

MISS = object()
_MISS = MISS
_EMPTY: set[str] = set()


class Run(Scan):
    """One scrub call: :class:`~._scan.Scan` plus the traversal of containers."""

    __slots__ = ()

    def walk(
        self, obj: Any, path: tuple[str | int, ...], depth: int, cls: Classification | None
    ) -> Any:
        t = type(obj)
        if t is str:
            return self.classified(obj, cls, path) if cls else self.text(obj, path, 0)
        if t is dict or t is list or t is tuple or t is set or t is frozenset:
            return self.container(obj, path, depth, cls)
        if t is int:
            if cls:
                return self.classified(obj, cls, path)
            return self.integer(obj, path)
        if isinstance(obj, _SAFE_SCALARS):
            return self.classified(obj, cls, path) if cls else obj
        if isinstance(obj, _TEXT_SCALARS):
            return self.classified(obj, cls, path) if cls else self.scalar(obj, path)
        if cls and isinstance(obj, str | bytes | bytearray):
            return self.classified(obj, cls, path)
        if isinstance(obj, bytes | bytearray | memoryview):
            return self.binary(bytes(obj), path)
        if isinstance(obj, str):
            return self.text(str(obj), path, 0)
        if isinstance(obj, int):
            return self.integer(int(obj), path)
        if isinstance(obj, Mapping | list | tuple | set | frozenset):
            return self.container(obj, path, depth, cls)
        if isinstance(obj, BaseException):
            return self.exception(obj, path, depth)
        if (dataclasses.is_dataclass(obj) or hasattr(type(obj), "__attrs_attrs__")) and (
            not isinstance(obj, type)
        ):
            return self.dataclass(obj, path, depth, cls)
        if hasattr(type(obj), "model_fields") and hasattr(obj, "model_copy"):
            return self.pydantic(obj, path, depth, cls)
        return self.opaque(obj, path, cls)

    def container(
        self, obj: Any, path: tuple[str | int, ...], depth: int, cls: Classification | None
    ) -> Any:
        s = self.s
        if depth >= s.max_depth:
            self.report.truncated += 1
            return "[REDACTED:depth]"
        oid = id(obj)
        if oid in self.active:
            return "[CYCLE]"
        self.active.add(oid)
        try:
            if type(obj) is dict or isinstance(obj, Mapping):
                return self.mapping(obj, path, depth, cls)
            items: list[Any] = []
            pair = cls is None and len(obj) == 2 and not isinstance(obj, set | frozenset)
            value_cls = self.pair_class(next(iter(obj))) if pair else None
            for i, item in enumerate(obj):
                if value_cls is not None and i == 1:
                    # [name, value] / (b"cookie", b"...") header pairs: the name's key rules
                    # apply to the value.
                    items.append(self.walk(item, (*path, i), depth + 1, value_cls))
                    continue
                if i >= s.max_items:
                    self.report.truncated += 1
                    items.append(f"[TRUNCATED:{len(obj) - i} more]")
                    break
                new = self.walk(item, (*path, i), depth + 1, cls)
                if new is not DROP:
                    items.append(new)
            t = type(obj)
            if t is list:
                return items
            if t is tuple:
                return tuple(items)
            if t is set or t is frozenset:
                return t(_hashable(x) for x in items)
            if isinstance(obj, tuple) and hasattr(obj, "_fields"):
                try:
                    return t(*items)
                except Exception:
                    return tuple(items)
            if isinstance(obj, set | frozenset):
                return {_hashable(x) for x in items}
            return items
        finally:
            self.active.discard(oid)

    def mapping(
        self,
        obj: Mapping[Any, Any],
        path: tuple[str | int, ...],
        depth: int,
        inherited: Classification | None,
    ) -> dict[Any, Any]:
        s = self.s
        out: dict[Any, Any] = {}
        paths = s._has_paths
        key_info = s._key_info
        # Short values already found to hold nothing (enums, levels, methods...); only
        # consulted for unclassified values, and only while no budget is exceeded.
        benign_values = s._benign_values if s._all_builtin and not self.expired else _EMPTY
        benign_skeletons = s._benign_skeletons
        # Hot path: values that certainly hold nothing are copied without a call.
        fast = s._all_builtin and not self.expired
        trigger = TRIGGER.search
        b64 = B64_RUN.search
        benign_shape = BENIGN_SHAPE.fullmatch
        max_string = s.max_string
        # {"name"|"key": K, "value": V} (HAR headers, OTel attribute lists): K's key
        # rules apply to V.
        pair_cls = None
        if inherited is None and "value" in obj:
            name = next((obj[n] for n in _PAIR_NAMES if n in obj), None)
            pair_cls = None if name is None else self.pair_class(name)
        items: Iterable[tuple[Any, Any]] = obj.items()
        if len(obj) > s.max_items:
            self.report.truncated += 1
            items = itertools.islice(items, s.max_items)
            out["[TRUNCATED]"] = f"{len(obj) - s.max_items} more"
        for k, v in items:
            if type(k) is str:
                # One lookup for the common case: a key already seen and found to hold
                # nothing, with its (type-unaware) schema classification.
                cls: Classification | None
                found = key_info.get(k, _MISS)
                if found is _MISS:
                    nk, cls = self.new_key(k, path)
                else:
                    nk, cls = k, found  # type: ignore[assignment]
                if inherited is not None:
                    cls = inherited
                elif pair_cls is not None and k == "value":
                    cls = pair_cls
                elif paths:
                    sub = (*path, k)
                    cls = s.schema.lookup(".".join(p for p in sub if isinstance(p, str)))
                    if cls is not None and cls.level < s.min_level:
                        cls = None
                if cls is None:
                    tv = type(v)
                    if tv is str:
                        if v in benign_values:
                            out[nk] = v
                            continue
                        skeleton = None
                        if fast and len(v) <= 64:
                            # Ids, amounts, versions, timestamps: a new value, but the same
                            # shape as one already cleared (see SKELETON).
                            skeleton = v.encode("utf-8", "surrogatepass").translate(SKELETON)
                            if skeleton in benign_skeletons:
                                out[nk] = v
                                continue
                        if fast and len(v) <= 128 and benign_shape(v) is not None:
                            out[nk] = v
                            if skeleton is not None and v[4:5] == "-":
                                # A date or timestamp (few skeletons; hex ids and UUIDs
                                # would only churn the cache): BENIGN_SHAPE sees digits
                                # as a class, so the skeleton decides it next time.
                                if len(benign_skeletons) >= 4096:
                                    benign_skeletons.clear()
                                benign_skeletons.add(skeleton)
                            continue
                        if (
                            fast
                            and v.isascii()
                            and trigger(v) is None
                            and not has_key_word(v)
                            and v.isprintable()
                            and "%" not in v
                            and (
                                len(v) < 16
                                or (
                                    len(v) <= max_string
                                    and (v.islower() or b64(v) is None or not encoded_runs(v))
                                )
                            )
                            and not (v[:1] in "{[" and v[-1:] in "}]")
                        ):
                            out[nk] = v
                            if skeleton is not None:
                                if len(benign_values) >= 4096:
                                    benign_values.clear()
                                benign_values.add(v)
                                if len(benign_skeletons) >= 4096:
                                    benign_skeletons.clear()
                                benign_skeletons.add(skeleton)
                            continue
                        if fast and not self.expired and len(v) <= max_string:
                            # The prefilter already ran on ASCII text: straight to the
                            # detectors; anything else is prefiltered on its normalised view.
                            plain_ascii = v.isascii() and "%" not in v
                            out[nk] = (
                                self.deep(v, (*path, k), 0)
                                if plain_ascii
                                else self.text(v, (*path, k), 0)
                            )
                            continue
                    elif (
                        (tv is float and not 1e11 <= abs(v) < 1e19)
                        or tv is bool
                        or v is None
                        or (tv is int and not 10**11 <= v < 10**19)
                    ):
                        out[nk] = v
                        continue
                sub = (*path, k)
            else:
                sub = (*path, str(k))
                cls = inherited
                nk = self.walk(k, (*path, "<key>"), depth + 1, None)
                nk = _hashable(nk)
            nv = (
                self.container(v, sub, depth + 1, cls)
                if type(v) is dict
                else self.walk(v, sub, depth + 1, cls)
            )
            if nv is DROP:
                continue
            out[nk] = nv
        return out

    def pair_class(self, name: Any) -> Classification | None:
        """The classification of the name half of a name/value pair (str or bytes)."""
        if type(name) is bytes:
            name = name.decode("utf-8", "replace")
        if type(name) is not str or len(name) > 256:
            return None
        return self.s.classify(name)

    def scalar(self, obj: Any, path: tuple[str | int, ...]) -> Any:
        """A float, Decimal or Enum: kept unless its text holds something to scrub."""
        if type(obj) is float:
            if 1e11 <= abs(obj) < 1e19 and obj.is_integer():
                new = self.integer(int(obj), path)
                return obj if type(new) is int else new
            return obj
        value = obj.value if isinstance(obj, enum.Enum) else obj
        if isinstance(value, enum.Enum) or value is None or type(value) is bool:
            return obj
        if type(value) is int:
            new = self.integer(value, path)
            return obj if type(new) is int else new
        if isinstance(value, float | decimal.Decimal | str | bytes):
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            new = self.text(text, path, 0)
            return obj if new is text else new
        return self.walk(value, path, 0, None) if isinstance(value, list | tuple | dict) else obj

    def new_key(self, key: str, path: tuple[str | int, ...]) -> tuple[Any, Classification | None]:
        """A key not seen before: scrubbed as text, classified; cached when it holds
        nothing (bounded)."""
        s = self.s
        cls = s.classify(key)
        before = self.changes
        nk = self.text(key, (*path, "<key>"), 0)
        if nk is key and self.changes == before:
            if len(s._key_info) >= 4096:
                s._key_info.clear()
            s._key_info[key] = cls
        return nk, cls

    def binary(self, value: bytes, path: tuple[str | int, ...]) -> bytes:
        text = value.decode("utf-8", "surrogateescape")
        new = self.text(text, path, 0)
        if new is text or not isinstance(new, str):
            return value if new is text else str(new).encode()
        return new.encode("utf-8", "surrogateescape")

    def exception(self, exc: BaseException, path: tuple[str | int, ...], depth: int) -> Any:
        args = self.walk(list(exc.args), (*path, "args"), depth + 1, None)
        try:
            new = copy.copy(exc)
            new.args = tuple(args) if isinstance(args, list) else (args,)
        except Exception:
            new = Exception(*(args if isinstance(args, list) else [args]))
        return new

    def dataclass(
        self, obj: Any, path: tuple[str | int, ...], depth: int, cls: Classification | None
    ) -> Any:
        if depth >= self.s.max_depth:
            self.report.truncated += 1
            return "[REDACTED:depth]"
        fields = (
            [f.name for f in dataclasses.fields(obj)]
            if dataclasses.is_dataclass(obj)
            else [a.name for a in type(obj).__attrs_attrs__]
        )
        values = {name: getattr(obj, name) for name in fields if hasattr(obj, name)}
        scrubbed = self.container(values, path, depth, cls)
        if not isinstance(scrubbed, dict):
            return scrubbed
        try:
            new = copy.copy(obj)
            for name in values:
                object.__setattr__(new, name, scrubbed.get(name))
        except Exception:
            return scrubbed
        return new

    def pydantic(
        self, obj: Any, path: tuple[str | int, ...], depth: int, cls: Classification | None
    ) -> Any:
        values = {name: getattr(obj, name, None) for name in type(obj).model_fields}
        scrubbed = self.container(values, path, depth, cls)
        if not isinstance(scrubbed, dict):
            return scrubbed
        try:
            return obj.model_copy(update={k: scrubbed.get(k) for k in values})
        except Exception:
            return scrubbed

    def opaque(self, obj: Any, path: tuple[str | int, ...], cls: Classification | None) -> Any:
        """Any other object: kept as is unless its text form holds something to scrub."""
        try:
            text = str(obj)
        except Exception:
            return "[REDACTED:unrepresentable]"
        if cls:
            return self.classified(text, cls, path)
        new = self.text(text, path, 0)
        return obj if new is text else new


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value
