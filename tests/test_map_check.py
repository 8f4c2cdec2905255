"""The declared map (TOML/YAML, validated with clear errors) and `map check` findings."""

from __future__ import annotations

import contextlib
import json
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from flowtrace import map as ftmap
from flowtrace.errors import DeclaredMapError, MapCheckError

from ._map_system import system_spans

HERE = Path(__file__).parent / "map"
SCHEMA = json.loads((Path(__file__).parents[1] / "docs/spec/map.schema.json").read_text())


@pytest.fixture(scope="module")
def observed() -> ftmap.ObservedMap:
    return ftmap.build(spans=system_spans())


def _doc() -> dict[str, Any]:
    return tomllib.loads((HERE / "shop.toml").read_text())


def test_toml_and_yaml_declare_the_same_map() -> None:
    """Both spellings load to the same DeclaredMap."""
    toml = ftmap.load_declared(HERE / "shop.toml")
    yml = ftmap.load_declared(HERE / "shop.yaml")
    assert (toml.nodes, toml.flows, toml.regions) == (yml.nodes, yml.flows, yml.regions)
    assert toml.nodes["payments-psp"].dpa == "DPA-2025-014"


def test_the_checked_in_maps_follow_the_published_json_schema() -> None:
    """docs/spec/map.schema.json accepts the example declared maps."""
    jsonschema.validate(_doc(), SCHEMA)
    jsonschema.validate(yaml.safe_load((HERE / "shop.yaml").read_text()), SCHEMA)
    example = Path(__file__).parents[1] / "examples/map_system/declared.toml"
    if example.exists():
        jsonschema.validate(tomllib.loads(example.read_text()), SCHEMA)


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (lambda d: d["flows"][1].update(purpose=["x"]), "flows[1].purpose is not a known key"),
        (lambda d: d["flows"][0].update(categories="pii"), "flows[0].categories must be a list"),
        (lambda d: d["processors"][0].pop("dpa"), "processors[0].dpa is required"),
        (lambda d: d["flows"][2].update(to="nowhere"), "flows[2].to names 'nowhere'"),
        (lambda d: d.update(version=2), "version must be 1"),
        (lambda d: d["regions"]["eu"].pop("may_flow_to"), "regions.eu.may_flow_to is required"),
        (lambda d: d.update(flow=[]), "flow is not a known key"),
        (
            lambda d: d["services"].append({"name": "orders-api"}),
            "services[2].name 'orders-api' is declared twice",
        ),
    ],
)
def test_bad_declarations_name_the_key_and_the_json_schema_agrees(edit: Any, key: str) -> None:
    """Our errors name the bad key; the JSON Schema rejects the same documents (except
    cross-references, which a schema cannot express)."""
    doc = _doc()
    edit(doc)
    with pytest.raises(DeclaredMapError, match=key.replace("[", r"\[").replace("]", r"\]")):
        ftmap.parse_declared(doc, "map.toml")
    if "names 'nowhere'" not in key and "twice" not in key:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(doc, SCHEMA)


def test_unreadable_files_raise_declared_map_error(tmp_path: Path) -> None:
    bad = tmp_path / "m.toml"
    bad.write_text("version = ")
    with pytest.raises(DeclaredMapError, match="not valid TOML"):
        ftmap.load_declared(bad)
    other = tmp_path / "m.json"
    other.write_text("{}")
    with pytest.raises(DeclaredMapError, match=r"is a \.toml, \.yaml or \.yml file"):
        ftmap.load_declared(other)
    with pytest.raises(DeclaredMapError, match="cannot be read"):
        ftmap.load_declared(tmp_path / "missing.toml")


@given(
    st.recursive(
        st.none() | st.integers() | st.text(max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=12,
    )
)
def test_any_document_is_either_a_map_or_a_declared_map_error(data: Any) -> None:
    """Garbage never escapes as KeyError/TypeError: a DeclaredMapError or a valid map."""
    with contextlib.suppress(DeclaredMapError):
        ftmap.parse_declared(data)


def test_a_matching_declaration_passes(observed: ftmap.ObservedMap) -> None:
    """The system's observed flows all match shop.toml: no error finding."""
    report = ftmap.assert_matches(observed, ftmap.load_declared(HERE / "shop.toml"))
    assert report.ok
    assert [f.rule for f in report.findings] == []


def _findings(observed: ftmap.ObservedMap, doc: dict[str, Any], **kw: Any) -> dict[str, Any]:
    report = ftmap.check(observed, ftmap.parse_declared(doc), **kw)
    return {f.fingerprint: f for f in report.findings}


def _trace_of(flow: ftmap.Flow, facet: str) -> tuple[str, str]:
    return flow.samples(facet)[0]


def test_an_undeclared_flow_of_pii_fails_with_its_evidence(observed: ftmap.ObservedMap) -> None:
    """Removing the declaration of api -> queue makes it an undeclared pii/pci flow."""
    doc = _doc()
    del doc["flows"][0]
    found = _findings(observed, doc)
    finding = found["undeclared-flow:orders-api->rabbitmq/orders:pci,pii"]
    assert finding.severity == "error"
    flow = observed.flow("orders-api", "rabbitmq/orders")
    assert finding.evidence[0] == _trace_of(flow, "category:pci")
    assert "stale-flow:orders-api->rabbitmq/orders:" not in found


def test_residency_undeclared_processor_plaintext_purposes(observed: ftmap.ObservedMap) -> None:
    """Each rule fires with the spans that prove it."""
    doc = _doc()
    doc["stores"][0]["region"] = "us"  # eu data now reaches a us store
    doc["processors"] = []  # the PSP has no DPA on record
    doc["flows"] = [f for f in doc["flows"] if f["to"] != "payments-psp"]
    doc["encryption"]["at_rest"] = ["pci", "pii"]  # the store receives pii in plaintext
    doc["flows"][0]["purposes"] = ["marketing"]
    found = _findings(observed, doc)
    store = observed.flow("billing-worker", "postgresql/shop")
    assert found["residency:billing-worker->postgresql/shop:eu->us"].evidence[0] == _trace_of(
        store, "region:eu"
    )
    assert "undeclared-processor:->payments-psp:" in found
    assert found["plaintext-at-rest:billing-worker->postgresql/shop:pii"].evidence[0] == (
        _trace_of(store, "plaintext:pii")
    )
    assert "undeclared-purpose:orders-api->rabbitmq/orders:checkout" in found
    # pci always travelled encrypted: no plaintext finding for it
    assert not [k for k in found if k.startswith("plaintext-at-rest") and k.endswith(":pci")]


def test_missing_purpose_and_undeclared_category() -> None:
    """Sensitive data without a purpose, and a category the flow does not declare."""
    spans = [
        (
            "a" * 32,
            "b" * 16,
            "CLIENT",
            {
                "db.system": "postgresql",
                "db.namespace": "shop",
                "flowtrace.data.categories": ["phi"],
            },
            {"service.name": "billing-worker"},
            1,
        )
    ]
    observed = ftmap.ObservedMap().add_all(spans)
    found = _findings(observed, _doc())
    assert found["missing-purpose:billing-worker->postgresql/shop:"].evidence == (
        ("a" * 32, "b" * 16),
    )
    assert "missing-legal-basis:billing-worker->postgresql/shop:" in found
    assert "undeclared-category:billing-worker->postgresql/shop:phi" in found


def test_baseline_accepts_known_findings_only(observed: ftmap.ObservedMap, tmp_path: Path) -> None:
    """A baseline written today accepts today's findings; a new one still fails."""
    doc = _doc()
    del doc["flows"][0]
    declared = ftmap.parse_declared(doc)
    first = ftmap.check(observed, declared)
    assert not first.ok
    baseline = tmp_path / "baseline.json"
    assert ftmap.write_baseline(first, baseline) == 1
    accepted = ftmap.load_baseline(baseline)
    assert ftmap.check(observed, declared, baseline=accepted).ok
    del doc["flows"][0]  # queue -> worker now undeclared as well
    again = ftmap.check(observed, ftmap.parse_declared(doc), baseline=accepted)
    assert [f.fingerprint for f in again.failing] == [
        "undeclared-flow:rabbitmq/orders->billing-worker:pci,pii"
    ]
    baseline.write_text("[]")
    with pytest.raises(DeclaredMapError, match="flowtrace_map_baseline"):
        ftmap.load_baseline(baseline)


def test_assert_matches_is_a_pytest_assertion(observed: ftmap.ObservedMap) -> None:
    """Drift raises MapCheckError, an AssertionError listing findings and trace ids."""
    doc = _doc()
    del doc["flows"][0]
    with pytest.raises(AssertionError) as info:
        ftmap.assert_matches(observed, ftmap.parse_declared(doc))
    assert isinstance(info.value, MapCheckError)
    trace_id = observed.flow("orders-api", "rabbitmq/orders").samples()[0][0]
    assert "undeclared-flow [orders-api -> rabbitmq/orders]" in str(info.value)
    assert trace_id in str(info.value)


def test_stale_flows_warn_by_default_and_can_fail() -> None:
    """A declared flow never observed is a warning, an error with stale='error'."""
    empty = ftmap.ObservedMap()
    declared = ftmap.load_declared(HERE / "shop.toml")
    assert ftmap.check(empty, declared).ok
    assert len(ftmap.check(empty, declared, stale="error").failing) == 4
