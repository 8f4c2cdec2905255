"""The scrubbing engine: structures, strategies, bounds, budgets and reports."""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
from typing import Any

import pydantic
import pytest

import flowtrace
from flowtrace import Category, Level, Schema, Scrubber
from flowtrace.errors import ConfigError
from flowtrace.scrubbing import Detector, Drop, Encrypt, Mask, Pseudonymize, Redact

CARD = "4111111111111111"


# --- structures ----------------------------------------------------------------------------


def test_scrub_returns_copy_and_never_mutates() -> None:
    """Nested dicts/lists/tuples/sets are copied; the input is unchanged."""
    data: dict[str, Any] = {
        "user": {"email": "a@b.io", "tags": ["x", "c@d.io"], "pair": ("e@f.io", 1)},
        "set": {"g@h.io", "plain"},
        "password": "hunter2",
    }
    before = copy.deepcopy(data)
    out = flowtrace.scrub(data)
    assert data == before
    assert out == {
        "user": {
            "email": "[REDACTED:email]",
            "tags": ["x", "[REDACTED:email]"],
            "pair": ("[REDACTED:email]", 1),
        },
        "set": {"[REDACTED:email]", "plain"},
        "password": "[REDACTED:credential]",
    }


def test_key_rules_are_type_aware() -> None:
    """Numbers and bools under credential keys are kept; strings are redacted."""
    out = flowtrace.scrub(
        {"tokens_used": 512, "token": 3, "api_key_set": True, "access_token": "abc", "secret": None}
    )
    assert out == {
        "tokens_used": 512,
        "token": 3,
        "api_key_set": True,
        "access_token": "[REDACTED:credential]",
        "secret": None,
    }


def test_classified_subtree_is_redacted_whole() -> None:
    """Every leaf under a classified key is classified too."""
    out = flowtrace.scrub({"credentials": {"user": "bob", "pw": ["a", "b"]}})
    assert out == {
        "credentials": {
            "user": "[REDACTED:credential]",
            "pw": ["[REDACTED:credential]", "[REDACTED:credential]"],
        }
    }


def test_schema_classifies_keys_and_paths() -> None:
    """A user schema adds field rules; values are redacted whatever their shape."""
    scrubber = Scrubber(schema={"diagnosis": "phi", "patient.name": "pii"})
    out = scrubber.scrub({"patient": {"name": "Ann", "diagnosis": "flu"}, "name": "Bo"})
    assert out == {
        "patient": {"name": "[REDACTED:pii]", "diagnosis": "[REDACTED:phi]"},
        "name": "Bo",
    }


def test_min_level_leaves_lower_levels_alone() -> None:
    """Fields below min_level (INTERNAL by schema) are not scrubbed."""
    scrubber = Scrubber(schema={"plan": "internal"})
    assert scrubber.scrub({"plan": "gold"}) == {"plan": "gold"}
    assert Scrubber(schema={"plan": "internal"}, min_level=Level.INTERNAL).scrub(
        {"plan": "gold"}
    ) == {"plan": "[REDACTED:field]"}


def test_non_string_keys_and_sensitive_keys() -> None:
    """Non-string keys survive; a key that is itself an email is scrubbed."""
    out = flowtrace.scrub({1: "a@b.io", ("t", 2): "x", "c@d.io": 5})
    assert out == {1: "[REDACTED:email]", ("t", 2): "x", "[REDACTED:email]": 5}


def test_bytes_are_scrubbed_as_bytes() -> None:
    """bytes in, bytes out; invalid UTF-8 does not break scrubbing."""
    out = flowtrace.scrub([b"mail a@b.io", b"\xff\xfe a@b.io", b"plain"])
    assert out == [b"mail [REDACTED:email]", b"\xff\xfe [REDACTED:email]", b"plain"]


def test_exceptions_are_copied_with_scrubbed_args() -> None:
    """An exception's args (and so its message) are scrubbed; the original keeps its own."""
    exc = ValueError("bad card " + CARD, 42)
    out = flowtrace.scrub(exc)
    assert isinstance(out, ValueError)
    assert out is not exc
    assert out.args == ("bad card [REDACTED:card]", 42)
    assert exc.args[0].endswith(CARD)


@dataclasses.dataclass(frozen=True)
class Payment:
    card: str
    amount: float
    note: str = ""


class Signup(pydantic.BaseModel):
    email: str
    age: int


def test_dataclasses_and_pydantic_models_keep_their_type() -> None:
    """Frozen dataclasses and pydantic models come back as scrubbed copies of their type."""
    pay = Payment(CARD, 9.5, "ok")
    out = flowtrace.scrub(pay)
    assert isinstance(out, Payment)
    assert out.card == "[REDACTED:card]"
    assert out.amount == 9.5
    assert pay.card == CARD
    sign = Signup(email="a@b.io", age=30)
    out2 = flowtrace.scrub(sign)
    assert isinstance(out2, Signup)
    assert out2.email == "[REDACTED:email]"
    assert sign.email == "a@b.io"


def test_embedded_json_is_scrubbed_as_data() -> None:
    """A string holding JSON gets key rules too and stays valid JSON."""
    out = flowtrace.scrub({"body": json.dumps({"password": "pw", "n": 1, "to": "a@b.io"})})
    assert json.loads(out["body"]) == {
        "password": "[REDACTED:credential]",
        "n": 1,
        "to": "[REDACTED:email]",
    }


def test_cycles_are_cut_with_a_marker() -> None:
    """A self-referencing structure terminates with [CYCLE]."""
    data: dict[str, Any] = {"email": "a@b.io"}
    data["self"] = data
    lst: list[Any] = ["x"]
    lst.append(lst)
    assert flowtrace.scrub(data) == {"email": "[REDACTED:email]", "self": "[CYCLE]"}
    assert flowtrace.scrub(lst) == ["x", "[CYCLE]"]


def test_deep_nesting_is_bounded_with_a_marker() -> None:
    """Beyond max_depth the rest is replaced by a marker, never passed through."""
    deep: Any = "a@b.io"
    for _ in range(5000):
        deep = [deep]
    out, report = Scrubber(max_depth=10).scrub_with_report(deep)
    for _ in range(10):
        out = out[0]
    assert out == "[REDACTED:depth]"
    assert report.truncated == 1


def test_huge_values_and_containers_are_bounded() -> None:
    """Strings over max_string are redacted whole; containers past max_items are cut."""
    scrubber = Scrubber(max_string=100, max_items=3)
    assert scrubber.scrub("x" * 101) == "[REDACTED:oversize]"
    assert scrubber.scrub(list(range(5))) == [0, 1, 2, "[TRUNCATED:2 more]"]


# --- budget --------------------------------------------------------------------------------


def test_time_budget_exceeded_redacts_fail_closed() -> None:
    """A deterministic clock that jumps past the budget: values are redacted, not passed."""
    ticks = itertools.count()
    scrubber = Scrubber(time_budget=1.5, clock=lambda: float(next(ticks)))
    out, report = scrubber.scrub_with_report(["mail a@b.io", "mail c@d.io", "x 1", "plain"])
    assert "a@b.io" not in str(out)
    assert "c@d.io" not in str(out)
    assert "[REDACTED:budget]" in out
    assert report.budget_exceeded >= 1


def test_budget_is_checked_inside_long_scans() -> None:
    """A long scan that outlives the budget mid-way is redacted whole."""
    now = [0.0]

    def clock() -> float:
        now[0] += 0.01
        return now[0]

    scrubber = Scrubber(time_budget=0.1, clock=clock)
    text = " ".join(["4444 4444 4444 4444"] * 2000)
    assert scrubber.scrub(text) == "[REDACTED:budget]"


# --- log injection -------------------------------------------------------------------------


def test_control_characters_are_neutralized() -> None:
    """CR, LF, NEL, U+2028/9 and ESC become visible escapes; TAB stays."""
    out, report = Scrubber().scrub_with_report("a\r\nFAKE entry\x85b\u2028c\u2029d\x1b[31mred\tend")
    assert out == "a\\r\\nFAKE entry\\x85b\\u2028c\\u2029d\\x1b[31mred\tend"
    assert report.neutralized == 6


def test_neutralize_can_be_turned_off() -> None:
    """neutralize=False keeps newlines (secrets still go)."""
    assert Scrubber(neutralize=False).scrub("a\nb@c.io") == "a\n[REDACTED:email]"


# --- strategies ----------------------------------------------------------------------------


def test_mask_keeps_last_four_of_a_card() -> None:
    """PCI mask: only the last four digits remain."""
    scrubber = Scrubber(strategies={Category.PCI: Mask()})
    assert scrubber.scrub_text("pay 4111 1111 1111 1234 now".replace("1234", "1111")) == (
        "pay ************1111 now"
    )


def test_pseudonyms_are_stable_per_key_and_key_id() -> None:
    """Same value + key + key id -> same pseudonym; another key id -> another one."""
    k1 = Scrubber(strategies={"email": Pseudonymize(b"k" * 32, key_id="k1")})
    k2 = Scrubber(strategies={"email": Pseudonymize(b"k" * 32, key_id="k2")})
    a = k1.scrub_text("a@b.io")
    assert a == k1.scrub_text("a@b.io")
    assert a.startswith("[PSEUDO:k1:")
    assert a != k1.scrub_text("c@d.io")
    assert k2.scrub_text("a@b.io") != a
    assert "a@b.io" not in a
    with pytest.raises(ValueError, match="16 bytes"):
        Pseudonymize(b"short")


def test_drop_removes_fields_and_redacts_in_text() -> None:
    """Drop removes a classified field; inside free text it redacts."""
    scrubber = Scrubber(strategies={Category.CREDENTIAL: Drop(), "email": Drop()})
    assert scrubber.scrub({"password": "x", "note": "mail a@b.io", "k": 1}) == {
        "note": "mail [REDACTED:email]",
        "k": 1,
    }


class FakeEncryptor:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.calls: list[tuple[str, str]] = []

    def encrypt(self, value: str, *, field: str) -> str:
        if self.fail:
            raise RuntimeError("KMS down")
        self.calls.append((value, field))
        return "enc:" + value[::-1].encode().hex()


def test_encrypt_strategy_calls_the_encryptor_with_the_field_path() -> None:
    """Encrypt hands value and field path to the encryptor and uses its token."""
    enc = FakeEncryptor()
    out = Scrubber(strategies={"email": Encrypt(enc)}).scrub({"user": {"contact": "a@b.io"}})
    assert out["user"]["contact"].startswith("enc:")
    assert enc.calls == [("a@b.io", "user.contact")]


def test_encrypt_failure_redacts_fail_closed() -> None:
    """If the encryptor raises, the value is redacted, never passed through."""
    out = Scrubber(strategies={"email": Encrypt(FakeEncryptor(fail=True))}).scrub("a@b.io")
    assert out == "[REDACTED:email]"


def test_strategy_returning_the_value_is_overridden() -> None:
    """A buggy strategy that echoes the value cannot leak it."""

    class Echo:
        def apply(self, value: str, **_: Any) -> str:
            return value

    assert Scrubber(default=Echo()).scrub_text("a@b.io") == "[REDACTED:email]"  # type: ignore[arg-type]


def test_custom_redact_template() -> None:
    """Redact's template is configurable and never includes the value."""
    assert Scrubber(default=Redact("<{label}>")).scrub_text("x a@b.io") == "x <email>"


def test_custom_detector() -> None:
    """A user detector joins the built-ins."""
    from flowtrace.scrubbing import BUILTIN_DETECTORS

    emp = Detector("employee_id", Category.PII, r"EMP-[0-9]{6}")
    scrubber = Scrubber(detectors=[*BUILTIN_DETECTORS, emp])
    assert scrubber.scrub_text("by EMP-123456 and a@b.io") == (
        "by [REDACTED:employee_id] and [REDACTED:email]"
    )


# --- reports, report-only, configure ---------------------------------------------------------


def test_report_names_paths_and_detectors_never_values() -> None:
    """The report has path, detector, category and counts, and no scrubbed value."""
    _, report = Scrubber().scrub_with_report(
        {"user": {"emails": ["a@b.io", "x c@d.io"]}, "password": "hunter2"}
    )
    assert report.by_label() == {"email": 2, "credential": 1}
    assert report.by_category() == {"pii": 2, "credential": 1}
    paths = {f.path for f in report.findings}
    assert paths == {"user.emails[0]", "user.emails[1]", "password"}
    assert "hunter2" not in repr(report)
    assert "a@b.io" not in repr(report)


def test_report_only_changes_nothing_but_counts() -> None:
    """report_only returns the input object itself and still reports."""
    data = {"email": "a@b.io"}
    out, report = Scrubber(report_only=True).scrub_with_report(data)
    assert out is data
    assert report.total == 1


def test_configure_sets_the_default_scrubber() -> None:
    """flowtrace.scrub uses configure(scrubber=...); a non-Scrubber is a ConfigError."""
    flowtrace.configure(scrubber=Scrubber(schema=Schema.from_dict({"plan": "restricted"})))
    assert flowtrace.scrub({"plan": "gold"}) == {"plan": "[REDACTED:field]"}
    with pytest.raises(ConfigError, match="Scrubber"):
        flowtrace.configure(scrubber=object())
    # The rejected value never replaced the configured scrubber.
    assert flowtrace.scrub({"plan": "gold"}) == {"plan": "[REDACTED:field]"}
