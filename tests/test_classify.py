"""flowtrace.classify: levels, categories, classifications and schema lookups."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, TypedDict

import pydantic
import pytest

from flowtrace.classify import DEFAULT_SCHEMA, Category, Classification, Level, Schema
from flowtrace.errors import SchemaError

PII = Classification(Level.CONFIDENTIAL, [Category.PII])


# --- levels and classifications ------------------------------------------------------------


def test_levels_are_ordered() -> None:
    """PUBLIC < INTERNAL < CONFIDENTIAL < RESTRICTED."""
    assert Level.PUBLIC < Level.INTERNAL < Level.CONFIDENTIAL < Level.RESTRICTED


def test_classification_parses_text_forms() -> None:
    """'level:cat,cat', a bare level and a bare category all parse."""
    assert Classification.parse("confidential:pii,phi") == Classification(
        Level.CONFIDENTIAL, [Category.PII, Category.PHI]
    )
    assert Classification.parse("internal") == Classification(Level.INTERNAL)
    assert Classification.parse("pci") == Classification(Level.RESTRICTED, [Category.PCI])
    assert Classification.parse({"categories": "pii"}).level == Level.CONFIDENTIAL


@pytest.mark.parametrize("bad", ["secret-ish", "confidential:bogus", "bogus:pii", 3.5, {"x": 1}])
def test_bad_classification_raises_schema_error(bad: object) -> None:
    """Unknown levels/categories raise SchemaError naming the valid choices."""
    with pytest.raises(SchemaError):
        Classification.parse(bad)  # type: ignore[arg-type]


# --- key normalization ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["email", "E-Mail", "userEmail", "email_address", "EMAIL", "x.email"]
)
def test_email_variants_are_one_key(key: str) -> None:
    """Separators, camelCase and case do not matter; extra words around are fine."""
    assert Schema.from_dict({"email": PII}).lookup(key) == PII


@pytest.mark.parametrize("key", ["recipient", "emailsent", "mail", "status"])
def test_matching_is_on_whole_words(key: str) -> None:
    """'ip' does not match inside 'recipient'; partial words never match."""
    schema = Schema.from_dict({"email": PII, "ip": "confidential:network"})
    assert schema.lookup(key) is None


def test_dotted_paths_match_suffixes() -> None:
    """'card.number' matches the path user.card.number but not a plain 'number'."""
    schema = Schema.from_dict({"card": {"number": "pci"}})
    assert schema.lookup("user.card.number") == Classification.parse("pci")
    assert schema.lookup("number") is None
    assert schema.has_paths


def test_highest_level_wins_among_words() -> None:
    """A key matching several entries gets the most restrictive one."""
    schema = Schema.from_dict({"user": "internal", "password": "credential"})
    assert schema.lookup("user_password") == Classification.parse("credential")


def test_default_schema_ignores_benign_lookalikes() -> None:
    """session, auth_method, tokens_used are not credentials; access_token is."""
    for benign in ("session", "auth_method", "tokens_used", "company", "span_id", "tokenizer"):
        assert DEFAULT_SCHEMA.lookup(benign) is None, benign
    for secret in ("access_token", "x-api-key", "Authorization", "db_password", "cardNumber"):
        assert DEFAULT_SCHEMA.lookup(secret) is not None, secret


# --- constructors --------------------------------------------------------------------------


@dataclasses.dataclass
class Address:
    street: Annotated[str, Classification(Level.CONFIDENTIAL, [Category.PII])]
    city: str


@dataclasses.dataclass
class Customer:
    email: Annotated[str, Category.PII]
    address: Address
    plan: str = "free"


class Patient(pydantic.BaseModel):
    diagnosis: Annotated[str, Category.PHI]
    name: str


class Card(TypedDict):
    pan: Annotated[str, Classification(Level.RESTRICTED, [Category.PCI])]
    brand: str


def test_schema_from_dataclass_annotations() -> None:
    """Annotated fields (nested dataclasses become dotted paths) are classified."""
    schema = Schema.from_model(Customer)
    assert schema.lookup("email") == Classification.parse("pii")
    assert schema.lookup("customer.address.street") == PII
    assert schema.lookup("plan") is None
    assert schema.lookup("city") is None


def test_schema_from_pydantic_and_typeddict() -> None:
    """pydantic models and TypedDicts work the same way."""
    assert Schema.from_model(Patient).lookup("diagnosis") == Classification.parse("phi")
    assert Schema.from_model(Card).lookup("pan") == Classification.parse("restricted:pci")


def test_schema_from_toml(tmp_path: Path) -> None:
    """A TOML file with a [fields] table loads."""
    path = tmp_path / "schema.toml"
    path.write_text('[fields]\nemail = "confidential:pii"\n"card.number" = "pci"\n')
    schema = Schema.from_toml(path)
    assert schema.lookup("contactEmail") == PII
    assert schema.lookup("card.number") == Classification.parse("pci")


def test_schema_from_yaml(tmp_path: Path) -> None:
    """A YAML file (flowtrace[yaml]) loads, including mapping-form classifications."""
    path = tmp_path / "schema.yaml"
    path.write_text(
        "fields:\n  email: confidential:pii\n  diagnosis:\n    level: restricted\n"
        "    categories: [phi]\n"
    )
    schema = Schema.from_yaml(path)
    assert schema.lookup("diagnosis") == Classification(Level.RESTRICTED, [Category.PHI])


def test_invalid_files_raise_schema_error() -> None:
    """Broken TOML/YAML or a non-mapping document raise SchemaError."""
    with pytest.raises(SchemaError):
        Schema.from_toml("email = \n")
    with pytest.raises(SchemaError):
        Schema.from_yaml("- just\n- a list\n")
    with pytest.raises(SchemaError):
        Schema.from_dict({"": "pii"})
