"""Identity never leaves raw (issue 10, items 14 and 15).

Each ``test_item<N>_...`` fails on main at 074b03e (checked by running this file against
that commit's ``src``) and holds after the fix.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import flowtrace as ft
from flowtrace import lineage
from flowtrace.crypto import FieldEncryptor, KeyVault, LocalKeyProvider
from flowtrace.propagation import extract, inject
from flowtrace.testing import Capture

KEY = b"k" * 32
PSEUDONYM = re.compile(r"sp1:[0-9a-f]{32}")


def _baggage_keys(headers: dict[str, str]) -> list[str]:
    return [m.partition("=")[0] for m in headers.get("baggage", "").split(",") if m]


# --- item 14: identity baggage goes only into the trust domain ---------------------------------


def test_item14_inject_leaves_user_and_subject_out_by_default() -> None:
    """A carrier bound for an unknown host gets tenant and purpose, never user or subject.

    On main every inject wrote flowtrace.user and flowtrace.subject, to any host.
    """
    with ft.context(tenant="acme", user="alice@acme.example", subject="patient-42", purpose="care"):
        headers = inject({})
    assert _baggage_keys(headers) == ["flowtrace.tenant", "flowtrace.purpose"]
    with ft.context(tenant="acme", user="alice@acme.example", subject="patient-42", purpose="care"):
        partner = inject({}, destination="https://partner.example/webhook")
    for carrier in (headers, partner):
        assert _baggage_keys(carrier) == ["flowtrace.tenant", "flowtrace.purpose"]
        assert "alice" not in carrier["baggage"]
        assert "patient" not in carrier["baggage"]


def test_item14_identity_goes_to_the_configured_trust_domain() -> None:
    """configure(trust_domain=[...]) names the hosts that may receive identity members."""
    ft.configure(trust_domain=["ledger.internal", "*.corp.example"])
    ctx = ft.FlowContext(tenant="acme", user="u-1", subject="patient-42")
    for destination in (
        "https://ledger.internal/post",
        "ledger.internal:8443",
        "http://billing.eu.corp.example/x",
    ):
        assert extract(inject({}, ctx, destination=destination)) == ctx, destination
    for destination in (
        "https://ledger.internal.evil.example/",
        "https://evil.example/?ledger.internal",
        "corp.example",
        "https://user@evil.example@",
    ):
        assert extract(inject({}, ctx, destination=destination)) == ft.FlowContext(
            tenant="acme"
        ), destination


def test_item14_explicit_per_call_opt_in_and_opt_out() -> None:
    """identity=True sends identity anywhere; identity=False withholds it even in-domain."""
    ft.configure(trust_domain=["*"])
    ctx = ft.FlowContext(tenant="acme", user="u-1")
    assert extract(inject({}, ctx, identity=True)) == ctx
    assert extract(inject({}, ctx, destination="x.example")) == ctx
    assert extract(inject({}, ctx, identity=False, destination="x.example")) == ft.FlowContext(
        tenant="acme"
    )


@pytest.mark.parametrize("value", ["ledger.internal", ["https://ledger.internal"], ["a b"], [1]])
def test_trust_domain_is_validated(value: object) -> None:
    """A trust domain must be a list of host patterns (no scheme, port or spaces)."""
    with pytest.raises(ft.ConfigError, match="trust_domain"):
        ft.configure(trust_domain=value)


def test_item14_spans_carry_a_keyed_pseudonym_or_no_subject(flowtrace_capture: Capture) -> None:
    """flowtrace.subject on spans is the lineage pseudonym, or absent; never the raw subject.

    On main every span inside the scope carried flowtrace.subject="patient-42".
    """

    @ft.handler(tenant="acme", subject="patient-42")
    def read_record() -> None:
        return None

    read_record()
    ft.configure(lineage=lineage.LineageConfig(pseudonym_key=KEY))
    read_record()
    without_key, with_key = flowtrace_capture.spans(read_record.__qualname__)
    assert "flowtrace.subject" not in (without_key.attributes or {})
    expected = lineage.Pseudonymizer(KEY).pseudonym("patient-42", "acme")
    assert (with_key.attributes or {})["flowtrace.subject"] == expected
    assert PSEUDONYM.fullmatch(expected)
    for span in (without_key, with_key):
        assert "patient-42" not in repr(dict(span.attributes or {}))


def test_item14_decrypt_span_events_never_carry_the_raw_subject(
    flowtrace_capture: Capture,
) -> None:
    """The flowtrace.decrypt span event names the subject by pseudonym only (main: raw)."""
    ft.configure(lineage=lineage.LineageConfig(pseudonym_key=KEY))
    enc = FieldEncryptor(KeyVault(LocalKeyProvider.generate("kek"), kek_id="kek"))

    @ft.handler(tenant="acme", subject="patient-42")
    def read_record() -> str:
        token = enc.encrypt("1970-01-01", field="dob")
        return str(enc.decrypt(token, field="dob", reason="treatment"))

    assert read_record() == "1970-01-01"
    span = flowtrace_capture.span(read_record.__qualname__)
    (event,) = [e for e in span.events if e.name == "flowtrace.decrypt"]
    attributes = dict(event.attributes or {})
    assert "patient-42" not in repr(attributes)
    expected = lineage.Pseudonymizer(KEY).pseudonym("patient-42", "acme")
    assert attributes["subject"] == expected
    assert attributes["flowtrace.subject"] == expected


# --- item 15: only the exact pseudonym form skips pseudonymisation ----------------------------


@pytest.mark.parametrize(
    "subject",
    [
        "sp1:alice@example.com",
        "sp1:",
        "sp1:" + "0" * 31,
        "sp1:" + "0" * 33,
        "sp1:" + "A" * 32,
        "sp1:" + "0" * 32 + "\n",
    ],
)
def test_item15_a_sp1_prefix_alone_does_not_skip_pseudonymisation(subject: str) -> None:
    """Raw text or a forged pseudonym starting with sp1: is pseudonymised (main: passed)."""
    out = lineage.Pseudonymizer(KEY).pseudonym(subject, "acme")
    assert out != subject
    assert PSEUDONYM.fullmatch(out)


def test_the_exact_pseudonym_form_passes_unchanged() -> None:
    """A real pseudonym is already one: it is stable, not pseudonymised twice."""
    p = lineage.Pseudonymizer(KEY)
    once = p.pseudonym("alice@example.com", "acme")
    assert p.pseudonym(once, "acme") == once


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=60))
def test_item15_pseudonymise_everything_not_in_the_exact_form(subject: str) -> None:
    """Whatever the text, the output is a pseudonym; only exact pseudonyms pass unchanged."""
    out = lineage.Pseudonymizer(KEY).pseudonym("sp1:" + subject, "acme")
    assert PSEUDONYM.fullmatch(out)
    assert (out == "sp1:" + subject) == bool(PSEUDONYM.fullmatch("sp1:" + subject))
