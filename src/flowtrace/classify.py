"""Classification levels, data categories and the field :class:`Schema`.

A :class:`Schema` maps field names (``"email"``) and dotted paths (``"user.card.number"``)
to a :class:`Classification`. Key matching is normalized: ``"E-Mail"``, ``"userEmail"`` and
``"email_address"`` all match a schema entry ``"email"``, because keys are split into
words (separators and camelCase) and an entry matches any contiguous run of those words
(``"e"+"mail"`` as well as ``"email"``). ``"recipient"`` does not match ``"ip"``: matching is
on whole words, never on arbitrary substrings.

Schemas are declared as a dict in code, derived from ``typing.Annotated`` fields of
dataclasses, pydantic models and TypedDicts, or loaded from TOML / YAML files::

    schema = Schema.from_dict({"email": "confidential:pii", "card.number": Category.PCI})

The scrubbing engine (:mod:`flowtrace.scrubbing`) decides *what to do* with a classified
value; this module only says what a field *is*.
"""

from __future__ import annotations

import dataclasses
import enum
import re
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SchemaError

__all__ = [
    "Category",
    "Classification",
    "DEFAULT_SCHEMA",
    "Level",
    "Schema",
    "key_words",
    "normalize_key",
]


class Level(enum.IntEnum):
    """How sensitive a value is; comparable (``Level.PUBLIC < Level.RESTRICTED``).

    Example::

        from flowtrace import Level

        assert Level.PUBLIC < Level.INTERNAL < Level.CONFIDENTIAL < Level.RESTRICTED
        assert Level["RESTRICTED"] is Level.RESTRICTED
    """

    PUBLIC = 0
    INTERNAL = 1
    CONFIDENTIAL = 2
    RESTRICTED = 3


class Category(enum.StrEnum):
    """What kind of sensitive data a value is (drives strategies and reports).

    Example::

        from flowtrace import Category

        assert Category("pii") is Category.PII
        assert Category.PCI == "pci"                      # a str enum: stable names in reports
    """

    PII = "pii"
    """Personal data: names, emails, phone numbers, national ids, IP addresses."""
    PHI = "phi"
    """Health data."""
    PCI = "pci"
    """Payment card data (PAN, CVV): never in logs in clear (PCI DSS)."""
    FINANCIAL = "financial"
    """Bank accounts (IBAN) and similar."""
    CREDENTIAL = "credential"
    """Passwords, API keys, tokens, private keys."""
    NETWORK = "network"
    """Network identifiers (IP addresses)."""


@dataclass(frozen=True, slots=True)
class Classification:
    """A level plus the categories a value belongs to.

    Example::

        from flowtrace import Category, Classification, Level

        c = Classification(Level.RESTRICTED, [Category.PHI])
        assert Classification.parse("restricted:phi") == c
        assert str(c) == "restricted:phi"
    """

    level: Level
    categories: frozenset[Category] = frozenset()

    def __init__(self, level: Level | int | str, categories: Iterable[Category | str] = ()) -> None:
        object.__setattr__(self, "level", _parse_level(level))
        object.__setattr__(self, "categories", frozenset(_parse_category(c) for c in categories))

    @property
    def only_credential(self) -> bool:
        """True when the only category is CREDENTIAL (numbers/bools are then not secrets)."""
        return self.categories == {Category.CREDENTIAL}

    @classmethod
    def parse(
        cls, spec: Classification | Level | Category | str | Mapping[str, Any]
    ) -> Classification:
        """Build from ``"confidential:pii,phi"``, a Level, a Category or a mapping.

        A bare Category implies :attr:`Level.RESTRICTED` for PCI/CREDENTIAL/PHI and
        :attr:`Level.CONFIDENTIAL` otherwise.
        """
        if isinstance(spec, Classification):
            return spec
        if isinstance(spec, Category):
            return cls(_default_level(spec), [spec])
        if isinstance(spec, Level):
            return cls(spec)
        if isinstance(spec, Mapping):
            if "level" not in spec and "categories" not in spec:
                raise SchemaError(
                    f"classification mapping {dict(spec)!r} needs 'level' and/or 'categories'"
                )
            cats = spec.get("categories", ())
            if isinstance(cats, str):
                cats = [c for c in re.split(r"[,\s]+", cats) if c]
            cats = [_parse_category(c) for c in cats]
            level = spec.get("level")
            if level is None:
                level = max((_default_level(c) for c in cats), default=Level.CONFIDENTIAL)
            return cls(level, cats)
        if isinstance(spec, str):
            text = spec.strip()
            if ":" in text:
                level_text, _, cat_text = text.partition(":")
                cats = [c for c in re.split(r"[,\s]+", cat_text) if c]
                return cls(level_text, cats)
            try:
                return cls(_parse_level(text))
            except SchemaError:
                pass
            try:
                return cls.parse(_parse_category(text))
            except SchemaError:
                raise SchemaError(
                    f"cannot parse classification {spec!r}: expected a level "
                    f"({', '.join(lv.name.lower() for lv in Level)}), a category "
                    f"({', '.join(c.value for c in Category)}) or 'level:cat1,cat2'"
                ) from None
        raise SchemaError(f"cannot use {type(spec).__name__} {spec!r} as a classification")

    def __str__(self) -> str:
        cats = ",".join(sorted(c.value for c in self.categories))
        return f"{self.level.name.lower()}:{cats}" if cats else self.level.name.lower()


def _parse_level(value: Level | int | str) -> Level:
    if isinstance(value, Level):
        return value
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int):
            return Level(value)
        if isinstance(value, str):
            return Level[value.strip().upper()]
    except (KeyError, ValueError):
        pass
    raise SchemaError(
        f"unknown classification level {value!r}; use one of "
        f"{', '.join(lv.name.lower() for lv in Level)}"
    )


def _parse_category(value: Category | str) -> Category:
    if isinstance(value, Category):
        return value
    if isinstance(value, str):
        try:
            return Category(value.strip().lower())
        except ValueError:
            pass
    raise SchemaError(
        f"unknown data category {value!r}; use one of {', '.join(c.value for c in Category)}"
    )


def _default_level(category: Category) -> Level:
    if category in (Category.PCI, Category.CREDENTIAL, Category.PHI):
        return Level.RESTRICTED
    return Level.CONFIDENTIAL


# --- key normalization --------------------------------------------------------------------

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def key_words(key: str) -> tuple[str, ...]:
    """Split a key into lower-case words: ``"userEmail_2"`` -> ``("user", "email", "2")``.

    Example::

        from flowtrace.classify import key_words

        assert key_words("userEmail_2") == ("user", "email", "2")
    """
    return tuple(w.lower() for w in _WORD.findall(key))


def normalize_key(key: str) -> str:
    """The compact form of a key: words joined, lower-case (``"E-Mail"`` -> ``"email"``).

    Example::

        from flowtrace.classify import normalize_key

        assert normalize_key("E-Mail") == "email"
        assert normalize_key("user_Email") == "useremail"
    """
    return "".join(key_words(key))


def _runs(words: tuple[str, ...]) -> set[str]:
    """Every concatenation of a contiguous run of words."""
    out: set[str] = set()
    for i in range(len(words)):
        acc = ""
        for j in range(i, len(words)):
            acc += words[j]
            out.add(acc)
    return out


# --- schema -------------------------------------------------------------------------------

ClassificationSpec = Classification | Level | Category | str | Mapping[str, Any]

_CACHE_LIMIT = 4096


class Schema:
    """Field names and dotted paths mapped to classifications.

    ``lookup("user.contactEmail")`` returns the classification of the most specific
    matching entry (dotted entries before plain names; among plain names, the one with
    the highest level), or ``None``.

    Example::

        from flowtrace import Category, Schema, Scrubber

        schema = Schema.from_dict({
            "diagnosis": "restricted:phi",               # level:category[,category]
            "patient.name": Category.PII,                # a dotted path
        })
        assert str(schema.lookup("diagnosis")) == "restricted:phi"
        scrubbed = Scrubber(schema=schema).scrub({"diagnosis": "flu"})
        assert scrubbed == {"diagnosis": "[REDACTED:phi]"}
    """

    __slots__ = ("_cache", "_names", "_paths")

    def __init__(self, entries: Mapping[str, ClassificationSpec] | None = None) -> None:
        self._names: dict[str, Classification] = {}
        self._paths: list[tuple[tuple[str, ...], Classification]] = []
        self._cache: dict[str, Classification | None] = {}
        for key, spec in (entries or {}).items():
            self._add(key, spec)

    def _add(self, key: str, spec: ClassificationSpec) -> None:
        if not isinstance(key, str) or not normalize_key(key):
            raise SchemaError(f"schema key {key!r} must be a non-empty field name or dotted path")
        classification = Classification.parse(spec)
        parts = tuple(normalize_key(p) for p in key.split("."))
        if any(not p for p in parts):
            raise SchemaError(f"schema path {key!r} has an empty segment")
        if len(parts) == 1:
            old = self._names.get(parts[0])
            if old is None or old.level < classification.level:
                self._names[parts[0]] = classification
        else:
            self._paths.append((parts, classification))
        self._cache.clear()

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def from_dict(cls, entries: Mapping[str, ClassificationSpec]) -> Schema:
        """From ``{"email": "confidential:pii", "card.number": Category.PCI}``.

        Nested mappings whose values are themselves specs are flattened to dotted paths
        (``{"card": {"number": "pci"}}``), unless they look like a classification mapping
        (keys ``level`` / ``categories``).
        """
        flat: dict[str, ClassificationSpec] = {}
        _flatten(entries, "", flat)
        return cls(flat)

    @classmethod
    def from_model(cls, model: type) -> Schema:
        """From ``Annotated[T, Classification(...)]`` fields of a dataclass, pydantic model
        or TypedDict (nested models become dotted paths)."""
        flat: dict[str, ClassificationSpec] = {}
        _from_model(model, "", flat, set())
        return cls(flat)

    @classmethod
    def from_toml(cls, source: str | Path) -> Schema:
        """From a TOML file (or TOML text); entries under ``[fields]`` or at top level."""
        import tomllib

        text = _read(source)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SchemaError(f"invalid TOML schema: {exc}") from exc
        return cls.from_dict(data.get("fields", data))

    @classmethod
    def from_yaml(cls, source: str | Path) -> Schema:
        """From a YAML file (or YAML text); needs ``pip install 'flowtrace-sdk[yaml]'``."""
        from .errors import require_extra

        yaml: Any = require_extra("yaml", "yaml", "Schema.from_yaml")
        try:
            data = yaml.safe_load(_read(source))
        except yaml.YAMLError as exc:
            raise SchemaError(f"invalid YAML schema: {exc}") from exc
        if not isinstance(data, Mapping):
            raise SchemaError("a YAML schema must be a mapping of field -> classification")
        return cls.from_dict(data.get("fields", data))

    def merged(self, other: Schema) -> Schema:
        """A new schema with both sets of entries (higher level wins on plain names)."""
        new = Schema()
        for src in (self, other):
            for name, c in src._names.items():
                old = new._names.get(name)
                if old is None or old.level < c.level:
                    new._names[name] = c
            new._paths.extend(src._paths)
        return new

    # -- lookup ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._names) + len(self._paths)

    def lookup(self, path: str) -> Classification | None:
        """The classification of a field name or dotted path, or ``None``."""
        cached = self._cache.get(path, _MISS)
        if cached is not _MISS:
            return cached  # type: ignore[return-value]
        result = self._lookup(tuple(path.split(".")))
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[path] = result
        return result

    def lookup_parts(self, parts: tuple[str, ...]) -> Classification | None:
        """Like :meth:`lookup` for a path already split into keys."""
        if not self._paths:
            return self.lookup(parts[-1]) if parts else None
        return self.lookup(".".join(parts))

    @property
    def has_paths(self) -> bool:
        """Whether any entry is a dotted path (lookups then need the full path)."""
        return bool(self._paths)

    def _lookup(self, parts: tuple[str, ...]) -> Classification | None:
        if not parts:
            return None
        for entry, classification in self._paths:
            if len(entry) <= len(parts) and all(
                _segment_matches(e, p) for e, p in zip(entry, parts[-len(entry) :], strict=True)
            ):
                return classification
        words = key_words(parts[-1])
        compact = "".join(words)
        direct = self._names.get(compact)
        if direct is not None:
            return direct
        best: Classification | None = None
        for run in _runs(words):
            found = self._names.get(run)
            if found is not None and (best is None or found.level > best.level):
                best = found
        return best


_MISS = object()


def _segment_matches(entry: str, key: str) -> bool:
    words = key_words(key)
    return entry == "".join(words) or entry in _runs(words)


def _read(source: str | Path) -> str:
    if isinstance(source, Path):
        return source.read_text(encoding="utf-8")
    if "\n" not in source and len(source) < 4096:
        p = Path(source)
        if p.suffix.lower() in (".toml", ".yaml", ".yml") and p.exists():
            return p.read_text(encoding="utf-8")
    return source


def _flatten(entries: Mapping[str, Any], prefix: str, out: dict[str, ClassificationSpec]) -> None:
    if not isinstance(entries, Mapping):
        raise SchemaError(f"schema must be a mapping, got {type(entries).__name__}")
    for key, value in entries.items():
        if not isinstance(key, str):
            raise SchemaError(f"schema key {key!r} must be a str")
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and not ({"level", "categories"} & set(value)):
            _flatten(value, path + ".", out)
        else:
            out[path] = value


def _from_model(
    model: Any, prefix: str, out: dict[str, ClassificationSpec], seen: set[int]
) -> None:
    if id(model) in seen:
        return
    seen.add(id(model))
    try:
        hints = typing.get_type_hints(model, include_extras=True)
    except Exception as exc:
        raise SchemaError(f"cannot read type hints of {model!r}: {exc}") from exc
    if not hints and not dataclasses.is_dataclass(model):
        raise SchemaError(f"{model!r} has no annotated fields to classify")
    for name, hint in hints.items():
        if name.startswith("_"):
            continue
        base, found = _unwrap(hint)
        if found is not None:
            out[prefix + name] = found
        for inner in _model_candidates(base):
            _from_model(inner, f"{prefix}{name}.", out, seen)


def _unwrap(hint: Any) -> tuple[Any, ClassificationSpec | None]:
    found: ClassificationSpec | None = None
    if typing.get_origin(hint) is typing.Annotated:
        base, *meta = typing.get_args(hint)
        for m in meta:
            if isinstance(m, Classification | Level | Category):
                found = Classification.parse(m)
        return base, found
    return hint, None


def _model_candidates(hint: Any) -> list[Any]:
    """Nested model types reachable from a hint (Optional[X], list[X], X)."""
    out: list[Any] = []
    args = typing.get_args(hint)
    for t in (hint, *args):
        t = _unwrap(t)[0]
        if isinstance(t, type) and (
            dataclasses.is_dataclass(t) or hasattr(t, "model_fields") or typing.is_typeddict(t)
        ):
            out.append(t)
    return out


# Built-in key rules used when no schema (or in addition to a user schema). Words like
# "session", "auth_method" or "tokens_used" are deliberately not matched.
DEFAULT_SCHEMA = Schema(
    {
        "password": Category.CREDENTIAL,
        "passwd": Category.CREDENTIAL,
        "pwd": Category.CREDENTIAL,
        "passphrase": Category.CREDENTIAL,
        "secret": Category.CREDENTIAL,
        "token": Category.CREDENTIAL,
        "apikey": Category.CREDENTIAL,
        "accesskey": Category.CREDENTIAL,
        "privatekey": Category.CREDENTIAL,
        "authorization": Category.CREDENTIAL,
        "cookie": Category.CREDENTIAL,
        "credential": Category.CREDENTIAL,
        "credentials": Category.CREDENTIAL,
        "jwt": Category.CREDENTIAL,
        "ssn": Category.PII,
        "socialsecurity": Category.PII,
        "cardnumber": Category.PCI,
        "creditcard": Category.PCI,
        "pan": Category.PCI,
        "cvv": Category.PCI,
        "cvc": Category.PCI,
    }
)
"""The built-in schema: common field names (``password``, ``ssn``...) and their classifications.

Example::

    from flowtrace import Schema
    from flowtrace.classify import DEFAULT_SCHEMA

    assert str(DEFAULT_SCHEMA.lookup("password")) == "restricted:credential"
    mine = DEFAULT_SCHEMA.merged(Schema.from_dict({"diagnosis": "restricted:phi"}))
"""
