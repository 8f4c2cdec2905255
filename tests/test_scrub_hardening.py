"""Issue 10, scrubbing items 6-11: the reproduced breaks, one regression test (or more)
per item, named after it. Run against main as of 074b03e (its src/ first on PYTHONPATH),
every test here fails there — a parametrized one in at least one case (208 of 270 cases
fail) — except the four marked "Guard", which pin what must keep passing.
"""

from __future__ import annotations

import base64
import dataclasses
import decimal
import enum
import io
import json
import logging
import random
import string
import urllib.parse
from collections.abc import Iterator

import attrs
import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from flowtrace import Scrubber
from flowtrace.logging import ScrubFilter, ScrubProcessor
from flowtrace.otel import ScrubbingSpanExporter

from ._scrub_samples import card, email, iban, ssn

SCRUBBER = Scrubber()
PEM_BODY = ["MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7", "VJTUt9Us8cKjMzEfYyjiWA4R4"]
PEM = "-----BEGIN PRIVATE KEY-----\n" + "\n".join(PEM_BODY) + "\n-----END PRIVATE KEY-----"


@pytest.fixture
def stdlib() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ScrubFilter())
    logger = logging.getLogger("test_scrub_hardening")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield logger, stream
    logger.removeHandler(handler)


# --- item 6: multi-line text is scanned whole ------------------------------------------


def test_item6_pem_key_in_exception_text_is_redacted_whole(
    stdlib: tuple[logging.Logger, io.StringIO],
) -> None:
    """A PEM key in an exception message loses its body and END line in exc_text."""
    logger, stream = stdlib
    try:
        raise ValueError(f"cannot load key\n{PEM}\nfrom vault")
    except ValueError:
        logger.exception("key load failed")
    out = stream.getvalue()
    assert "[REDACTED:private_key]" in out
    assert PEM_BODY[0] not in out
    assert PEM_BODY[1] not in out
    assert "END PRIVATE KEY" not in out
    assert "Traceback (most recent call last):\n" in out  # line structure kept


def test_item6_pem_key_in_stack_info_and_repr_escapes(
    stdlib: tuple[logging.Logger, io.StringIO],
) -> None:
    """stack_info is scanned whole; a key repr'd with literal \\n escapes is caught too."""
    logger, stream = stdlib
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, None)
    record.stack_info = f"Stack (most recent call last):\n  key = {PEM}\n"
    ScrubFilter().filter(record)
    assert record.stack_info is not None
    assert PEM_BODY[1] not in record.stack_info
    assert "END PRIVATE" not in record.stack_info
    logger.error("bad key %r", PEM)  # repr: '-----BEGIN...\\nMIIE...\\n-----END...'
    assert PEM_BODY[0] not in stream.getvalue()
    assert PEM_BODY[1] not in stream.getvalue()


def test_item6_pem_key_in_otel_exception_stacktrace() -> None:
    """exception.stacktrace on a span is scanned whole before export."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ScrubbingSpanExporter(memory)))
    with provider.get_tracer("t").start_as_current_span("load") as span:
        span.record_exception(ValueError(f"bad key\n{PEM}"))
    provider.shutdown()
    (event,) = memory.get_finished_spans()[0].events
    for key in ("exception.stacktrace", "exception.message"):
        text = str((event.attributes or {})[key])
        assert PEM_BODY[0] not in text, key
        assert PEM_BODY[1] not in text, key
        assert "END PRIVATE KEY" not in text, key
    assert "\n" in str((event.attributes or {})["exception.stacktrace"])


def test_item6_pretty_printed_json_in_exception_loses_its_token(
    stdlib: tuple[logging.Logger, io.StringIO],
) -> None:
    """Pretty-printed JSON inside an exception keeps no "token" value."""
    logger, stream = stdlib
    payload = json.dumps(
        {"user": "u-1", "token": "tk-81hd92kd0a", "nested": {"secret": "s3"}}, indent=2
    )
    try:
        raise RuntimeError(f"upstream rejected:\n{payload}")
    except RuntimeError:
        logger.exception("call failed")
    out = stream.getvalue()
    assert "tk-81hd92kd0a" not in out
    assert '"s3"' not in out
    assert '"user": "u-1"' in out


def test_item6_multiline_keeps_line_feeds_and_escapes_other_controls() -> None:
    """multiline=True: LF kept, CR/ESC escaped; the default escapes LF too."""
    text = "line one\nline two\r\x1b[31m"
    assert SCRUBBER.scrub_text(text, multiline=True) == "line one\nline two\\r\\x1b[31m"
    assert SCRUBBER.scrub_text(text) == "line one\\nline two\\r\\x1b[31m"


# --- item 7: disguised values ------------------------------------------------------------

_ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]


def _fullwidth(text: str) -> str:
    return "".join(chr(0xFF10 + int(c)) if c.isdigit() else c for c in text)


def _arabic_indic(text: str) -> str:
    return "".join(chr(0x0660 + int(c)) if c.isdigit() else c for c in text)


def _disguise(value: str, how: str, rnd: random.Random) -> str:
    if how == "fullwidth":
        return _fullwidth(value)
    if how == "arabic_indic":
        return _arabic_indic(value)
    if how == "zero_width":
        chars = list(value)
        for _ in range(rnd.randint(1, 4)):
            chars.insert(rnd.randint(1, len(chars) - 1), rnd.choice(_ZERO_WIDTH))
        return "".join(chars)
    if how == "nbsp":
        return value.replace(" ", rnd.choice(["\u00a0", "\u202f", "\u2007"]))
    raise KeyError(how)


def _disguised_value(kind: str, rnd: random.Random) -> str:
    if kind == "card":
        number = card(rnd)
        sep = rnd.choice([" ", "-", ".", "/", "_", ""])
        return sep.join(number[i : i + 4] for i in range(0, len(number), 4))
    if kind == "ssn":
        return ssn(rnd).replace("-", rnd.choice(["-", " ", "."]))
    if kind == "iban":
        value = iban(rnd)
        value = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        return value.lower() if rnd.random() < 0.5 else value
    value = email(rnd)
    return value.replace("@", "\uff20") if rnd.random() < 0.5 else value


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["card", "ssn", "iban", "email"]),
    how=st.sampled_from(["none", "fullwidth", "arabic_indic", "zero_width", "nbsp"]),
    seed=st.integers(0, 2**32),
    prefix=st.sampled_from(["", "paid with ", "ref: ", "(", "x\t"]),
    suffix=st.sampled_from(["", " ok", ".", ")", ", then retry"]),
)
def test_item7_disguised_values_are_found_on_the_normalised_view(
    kind: str, how: str, seed: int, prefix: str, suffix: str
) -> None:
    """Normalised detection: whatever the disguise, the value is gone and the text around
    it (the original characters) is kept."""
    rnd = random.Random(seed)
    value = _disguised_value(kind, rnd)
    if how != "none" and not (how in ("fullwidth", "arabic_indic") and kind == "email"):
        value = _disguise(value, how, rnd)
    text = f"{prefix}{value}{suffix}"
    out = SCRUBBER.scrub_text(text, multiline=True)
    assert value not in out
    assert out.startswith(prefix.replace("\t", "\t"))
    assert out.endswith(suffix)
    assert "[REDACTED:" in out


@pytest.mark.parametrize(
    "value",
    ["jürgen.müller@exämple.de", "用户@例子.广告", "ana@bücher.xn--p1ai", "zoë\uff20example.com"],
)
def test_item7_idn_and_fullwidth_at_emails(value: str) -> None:
    """Internationalised addresses and a fullwidth @ are emails."""
    assert SCRUBBER.scrub_text(f"mail {value} now") == "mail [REDACTED:email] now"


def test_item7_only_the_original_span_is_replaced() -> None:
    """The offset map puts the placeholder exactly where the disguised value was."""
    wide = "\u200b".join(_fullwidth(group) for group in ("4111", "1111", "1111", "1111"))
    text = f"pay {wide} café ✓"
    assert SCRUBBER.scrub_text(text) == "pay [REDACTED:card] café ✓"


# --- item 8: credential keys in every text form --------------------------------------

_KEYS = [
    "token", "access_token", "refresh_token", "session_id", "sessionid", "JSESSIONID",
    "cookie", "api_key", "x-api-key", "apiKey", "secret", "client_secret", "password",
    "passwd", "pwd", "passphrase", "private_key", "credentials", "jwt", "userPassword",
    "password_hash",
]  # fmt: skip
_FORMS = [
    "{k}={v}",
    "GET /cb?{k}={v}&page=2",
    "{k}: {v}",
    "{k} = {v}",
    '"{k}" : "{v}"',
    "'{k}': '{v}'",
    '{{\\"{k}\\": \\"{v}\\"}}',
    '{{\\\\\\"{k}\\\\\\":\\\\\\"{v}\\\\\\"}}',
    "<{k}>{v}</{k}>",
    "run --{k} {v} --verbose",
    "run --{k}={v}",
]


@pytest.mark.parametrize("key", _KEYS)
@pytest.mark.parametrize("form", _FORMS)
def test_item8_credential_keys_in_every_text_form(key: str, form: str) -> None:
    """Every credential key the key rules know is caught in free text, whatever the form."""
    assert SCRUBBER.classify(key) is not None, key  # the key rules agree
    secret = "Zq8w1xYvN3"
    out = SCRUBBER.scrub_text("before " + form.format(k=key, v=secret) + " after")
    assert secret not in out
    assert out.startswith("before ")
    if not (key == "cookie" and form == "{k}: {v}"):  # a Cookie header runs to the line end
        assert out.endswith(" after")


@pytest.mark.parametrize("quote", ['"', "'"])
def test_item8_quoted_value_is_redacted_whole(quote: str) -> None:
    """A quoted value with spaces goes whole, not just its first word."""
    out = SCRUBBER.scrub_text(f"password={quote}correct horse battery staple{quote} ok")
    assert "horse" not in out
    assert "staple" not in out
    assert out == f"password={quote}[REDACTED:assignment]{quote} ok"


@pytest.mark.parametrize(
    "header", ["Cookie: sid=s3cr3t; theme=dark", "Set-Cookie: sid=s3cr3t; Path=/; HttpOnly"]
)
def test_item8_cookie_headers(header: str) -> None:
    """Every pair of a Cookie / Set-Cookie header is redacted."""
    out = SCRUBBER.scrub_text(f"headers:\n{header}\nHost: example.com", multiline=True)
    assert "s3cr3t" not in out
    assert "theme" not in out
    assert out.endswith("\nHost: example.com")


@pytest.mark.parametrize(
    "text",
    [
        "tokens_used=512",
        "passwordless login enabled",
        "token expired at 12:00",
        "password=",
        "password: null",
        "secret santa",
        "session=sess_1",
        "cookies accepted: yes",
    ],
)
def test_item8_benign_look_alikes_stay(text: str) -> None:
    """Guard: counts, prose and words that are not credential keys are left alone."""
    assert SCRUBBER.scrub_text(text) == text


def test_item8_json_escaped_and_double_encoded_inside_a_string_field() -> None:
    """JSON that was encoded into a string (once or twice) still loses its token."""
    once = json.dumps({"token": "tk-escaped-1"})
    twice = json.dumps(json.dumps({"refresh_token": "tk-escaped-2"}))
    out = json.dumps(SCRUBBER.scrub({"body": f"resp={once}", "raw": f"x {twice} y"}))
    assert "tk-escaped-1" not in out
    assert "tk-escaped-2" not in out


# --- item 9: key/value pairs split across a structure -----------------------------------


def test_item9_name_value_pairs_take_the_names_key_rules() -> None:
    """[name, value] lists, {"name"|"key": K, "value": V}, ASGI tuples, HAR and OTel
    attribute lists: the key rules of K apply to V; other pairs are untouched."""
    event = {
        "pairs": [["password", "hunter2"], ["status", "ok"]],
        "asgi": [(b"cookie", b"sid=abc123"), (b"accept", b"text/html")],
        "har": {"headers": [{"name": "Authorization", "value": "Basic Zm9vOmJhcg"},
                            {"name": "Accept", "value": "*/*"}]},
        "otel": [{"key": "db.password", "value": {"stringValue": "pg-pass-9"}},
                 {"key": "http.route", "value": {"stringValue": "/orders"}}],
        "kv": {"key": "api_key", "value": "ak-123456"},
    }  # fmt: skip
    out = SCRUBBER.scrub(event)
    assert out["pairs"] == [["password", "[REDACTED:credential]"], ["status", "ok"]]
    assert out["asgi"] == [(b"cookie", b"[REDACTED:credential]"), (b"accept", b"text/html")]
    assert out["har"]["headers"][0]["value"] == "[REDACTED:credential]"
    assert out["har"]["headers"][1]["value"] == "*/*"
    assert out["otel"][0]["value"] == {"stringValue": "[REDACTED:credential]"}
    assert out["otel"][1]["value"] == {"stringValue": "/orders"}
    assert out["kv"]["value"] == "[REDACTED:credential]"


def test_item9_pairs_keep_type_awareness() -> None:
    """Guard: a numeric value under a credential-only name is not a secret (as for keys)."""
    assert SCRUBBER.scrub([["tokens", 512], ["token", 3]]) == [["tokens", 512], ["token", 3]]


# --- item 10: the rendered log message is scanned --------------------------------------


def test_item10_rendered_stdlib_message_is_scanned(
    stdlib: tuple[logging.Logger, io.StringIO],
) -> None:
    """log.info("%s=%s", "password", pw) does not print pw."""
    logger, stream = stdlib
    logger.info("%s=%s", "password", "hunter2-xyz")
    logger.info("login for %s with %s:%s", "bob", "token", "tk-77aa")
    out = stream.getvalue()
    assert "hunter2-xyz" not in out
    assert "tk-77aa" not in out
    assert "login for bob with token:" in out


def test_item10_structlog_before_positional_formatter_warns_once_and_scrubs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Running before PositionalArgumentsFormatter: one warning, and the rendered message
    is scrubbed anyway."""
    out = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(out),
        processors=[
            ScrubProcessor(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    with caplog.at_level(logging.WARNING, logger="flowtrace.scrubbing"):
        logger.info("%s=%s", "password", "pw-1-secret")
        logger.info("user %s", "a@b.io")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert "pw-1-secret" not in out.getvalue()
    assert lines[1]["event"] == "user [REDACTED:email]"
    warnings = [r for r in caplog.records if "PositionalArgumentsFormatter" in r.getMessage()]
    assert len(warnings) == 1


def test_item10_structlog_after_positional_formatter_does_not_warn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Guard: in the documented order nothing is said."""
    with caplog.at_level(logging.WARNING, logger="flowtrace.scrubbing"):
        out = ScrubProcessor()(None, "info", {"event": "password=pw-2-secret"})
    assert out["event"] == "password=[REDACTED:assignment]"
    assert not caplog.records


# --- item 11: bounded decoding and scalar types ------------------------------------------


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("q=jane.doe%40example.com&x=1", "jane.doe%40example.com"),
        ("redirect=%2Fcb%3Fpassword%3Dhunter2xyz", "hunter2xyz"),
        ("card%3A%204111%201111%201111%201111", "4111%201111%201111%201111"),
        ("double=jane%2540example.com", "jane%2540example.com"),
    ],
)
def test_item11_percent_encoded_text_is_decoded_and_scanned(text: str, secret: str) -> None:
    """Percent-encoding (up to two layers) hides nothing."""
    out = SCRUBBER.scrub_text(text)
    assert secret not in out
    assert "[REDACTED:" in out


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "plain",
    [
        '{"password": "pw-base64-1"}',
        "contact jane.doe@example.com please",
        "card 4111 1111 1111 1111 declined",
    ],
)
def test_item11_base64_text_is_decoded_and_scanned(plain: str) -> None:
    """Base64 that decodes to UTF-8 text or JSON is scanned; the run is replaced whole."""
    encoded = _b64(plain)
    out = SCRUBBER.scrub_text(f"payload={encoded} end")
    assert encoded not in out
    assert out.startswith("payload=[REDACTED:")
    assert out.endswith(" end")
    urlsafe = base64.urlsafe_b64encode(plain.encode()).decode().rstrip("=")
    assert urlsafe not in SCRUBBER.scrub_text(f"blob {urlsafe}")


def test_item11_decoding_is_bounded() -> None:
    """Two base64 layers are decoded; a third is not, and innocent base64 text stays."""
    two = _b64(_b64("mail jane.doe@example.com now"))
    assert two not in SCRUBBER.scrub_text(f"x {two}")
    three = _b64(_b64(_b64("mail jane.doe@example.com now")))
    assert SCRUBBER.scrub_text(f"x {three}") == f"x {three}"
    innocent = _b64("nothing to see in this sentence")
    assert SCRUBBER.scrub_text(f"x {innocent}") == f"x {innocent}"


class _Contact(enum.Enum):
    SUPPORT = "support.lead@example.com"


@dataclasses.dataclass(frozen=True)
class _Login:
    user: str
    password: str


@attrs.frozen
class _Charge:
    note: str
    api_key: str


def test_item11_scalars_and_objects_are_scanned_like_their_text() -> None:
    """Enum, Decimal and float values and dataclass/attrs objects hide nothing."""
    out = SCRUBBER.scrub(
        {
            "contact": _Contact.SUPPORT,
            "amount": decimal.Decimal("4111111111111111"),
            "number": 4111111111111111.0,
            "ratio": 0.25,
            "login": _Login("bob", "hunter2"),
            "charge": _Charge("refund to jane@example.com", "ak-1234567"),
        }
    )
    assert out["contact"] == "[REDACTED:email]"
    assert out["amount"] == "[REDACTED:card]"
    assert out["number"] == "[REDACTED:card]"
    assert out["ratio"] == 0.25
    assert out["login"] == _Login("bob", "[REDACTED:credential]")
    assert out["charge"] == _Charge("refund to [REDACTED:email]", "[REDACTED:credential]")


# --- the attacker's view: arbitrary wrapping never lets a planted secret through ------------


@settings(max_examples=200, deadline=None)
@given(
    # Letters and digits (a bare integer is not a secret, as under the key rules; a word
    # could be part of a placeholder such as "[REDACTED:assignment]").
    secret=st.text(alphabet=string.ascii_letters + string.digits, min_size=10, max_size=24).filter(
        lambda s: not s.isdigit() and any(c.isdigit() for c in s)
    ),
    key=st.sampled_from(_KEYS),
    form=st.sampled_from(_FORMS),
    encode=st.sampled_from(["none", "percent", "base64"]),
)
def test_item8_and_11_wrapped_credentials_never_survive(
    secret: str, key: str, form: str, encode: str
) -> None:
    """A credential in any text form, optionally percent- or base64-encoded, is gone."""
    text = form.format(k=key, v=secret)
    if encode == "percent":
        text = urllib.parse.quote(text, safe="")
    elif encode == "base64":
        text = _b64(text)
    out = SCRUBBER.scrub_text(f"log: {text} end")
    assert secret not in out
