"""Value-shape detectors: a regular expression plus a validation rule each.

Every pattern is built to run in linear time on Python's backtracking ``re`` engine:
each candidate can only *start* at a word boundary enforced by a negative lookbehind,
every repetition is bounded and possessive (``{m,n}+``) so a failed candidate is never
re-tried with a shorter split, and alternatives begin with distinct characters. The
detectors are compiled into one alternation, so a string is scanned once.

A detector's ``validate`` returns the span to replace (often a sub-span: the password in a
URL, the token after ``Bearer``) or ``None`` to reject the candidate (a card number that
fails Luhn is not a card).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..classify import Category
from ._checks import card_brand, iban_valid, ipv4_valid, ipv6_valid, luhn_valid, ssn_valid

__all__ = ["BUILTIN_DETECTORS", "Detector", "card_spans", "compile_detectors"]

Span = tuple[int, int]
Validator = Callable[[re.Match[str]], Sequence[Span]]


@dataclass(frozen=True)
class Detector:
    """One value shape. ``pattern`` must be linear-time; inner groups must be prefixed
    with ``name + "_"`` so that detectors combine into one expression."""

    name: str
    category: Category
    pattern: str
    validate: Validator | None = field(default=None, compare=False)
    rule: str = ""
    """Human-readable validation rule (rendered in the docs' detector table)."""

    def spans(self, m: re.Match[str]) -> Sequence[Span]:
        """The spans to replace for a match of this detector's group (empty: rejected)."""
        if self.validate is None:
            return (m.span(self.name),)
        return self.validate(m)


_AL = r"(?<![A-Za-z0-9])"  # left alnum boundary
_AR = r"(?![A-Za-z0-9])"  # right alnum boundary


# --- validators ---------------------------------------------------------------------------


def card_spans(m: re.Match[str], group: str = "card") -> list[Span]:
    """Luhn-valid cards with a known IIN range inside a run of digit groups.

    A run may hold a card next to other numbers ("1234 4111 1111 1111 1111"): candidates
    start and end only at group separators (or the run's ends), longest first, left to
    right. A contiguous digit string is only ever tried whole.
    """
    start, end = m.span(group)
    s = m.string
    digits: list[str] = []
    ends: list[int] = []  # offset after each digit
    bounds: list[int] = []  # digit indexes where a group starts
    prev_digit = False
    for i in range(start, end):
        ch = s[i]
        if "0" <= ch <= "9":
            if not prev_digit:
                bounds.append(len(digits))
            digits.append(ch)
            ends.append(i + 1)
            prev_digit = True
        else:
            prev_digit = False
    # Candidate ends: a group end (digit count at the end of each group).
    group_end = [*bounds[1:], len(digits)]
    out: list[Span] = []
    b = 0
    while b < len(bounds):
        first = bounds[b]
        found = 0
        e = b
        while e < len(group_end) and group_end[e] - first <= 19:
            e += 1
        for last in reversed(group_end[b:e]):
            if last - first < 13:
                break
            candidate = "".join(digits[first:last])
            if card_brand(candidate) and luhn_valid(candidate):
                found = last
                break
        if found:
            out.append((ends[first] - 1, ends[found - 1]))
            while b < len(bounds) and bounds[b] < found:
                b += 1
        else:
            b += 1
    return out


def _iban_span(m: re.Match[str]) -> list[Span]:
    from ._checks import _IBAN_LENGTHS

    start, end = m.span("iban")
    text = m.string[start:end]
    want = _IBAN_LENGTHS.get(text[:2])
    if want is None:
        return []
    compact: list[str] = []
    for i, ch in enumerate(text):
        if ch != " ":
            compact.append(ch)
            if len(compact) == want:
                after = m.string[start + i + 1 : start + i + 2]
                if after.isalnum() or not iban_valid("".join(compact)):
                    return []
                return [(start, start + i + 1)]
    return []


def _ssn_span(m: re.Match[str]) -> list[Span]:
    if ssn_valid(m.group("ssn_a"), m.group("ssn_g"), m.group("ssn_s")):
        return [m.span("ssn")]
    return []


_EXT = re.compile(r"\s?(?:x|ext\.?)\s?[0-9]{1,6}$")


def _phone_span(m: re.Match[str]) -> list[Span]:
    start, end = m.span("phone")
    text = m.group("phone")
    ext = _EXT.search(text)
    main = text[: ext.start()] if ext else text
    if main.startswith(("+", "00")):
        # International groups may have swallowed following numbers: keep the longest
        # prefix, ending after a digit group, with 8-15 digits after the prefix.
        skip = 2 if main.startswith("00") else 0
        count = 0
        best = -1
        for i, ch in enumerate(main):
            if "0" <= ch <= "9":
                count += 1
                nxt = main[i + 1 : i + 2]
                if not ("0" <= nxt <= "9") and 8 <= count - skip <= 15:
                    best = i + 1
        if best < 0:
            return []
        if best == len(main) and ext:
            return [(start, end)]
        return [(start, start + best)]
    digits = sum(ch.isdigit() for ch in main)
    if main.startswith("0"):
        ok = 10 <= digits <= 11 and any(ch in " -." for ch in main)
    else:
        ok = digits in (10, 11)
    return [(start, end)] if ok else []


def _ipv4_span(m: re.Match[str]) -> list[Span]:
    return [m.span("ipv4")] if ipv4_valid(m.group("ipv4")) else []


def _ipv6_span(m: re.Match[str]) -> list[Span]:
    return [m.span("ipv6")] if ipv6_valid(m.group("ipv6")) else []


def _aws_secret_span(m: re.Match[str]) -> list[Span]:
    text = m.group("aws_secret_key")
    if (
        any(c.isupper() for c in text)
        and any(c.islower() for c in text)
        and any(c.isdigit() for c in text)
    ):
        return [m.span("aws_secret_key")]
    return []


def _bearer_span(m: re.Match[str]) -> list[Span]:
    tok = m.group("bearer_token")
    if len(tok) >= 24 or (len(tok) >= 8 and any(c.isdigit() for c in tok)):
        return [m.span("bearer_token")]
    return []


_BENIGN_ASSIGNED = frozenset({"true", "false", "null", "none", "", "***", "redacted"})


def _assignment_span(m: re.Match[str]) -> list[Span]:
    val = m.group("assignment_val")
    if val.lower() in _BENIGN_ASSIGNED or val.startswith("[REDACTED") or val.isdigit():
        return []
    return [m.span("assignment_val")]


# --- the built-in detectors ---------------------------------------------------------------

_B64 = r"A-Za-z0-9_\-"

BUILTIN_DETECTORS: tuple[Detector, ...] = (
    Detector(
        "private_key",
        Category.CREDENTIAL,
        r"-----BEGIN[A-Z ]{0,40}PRIVATE KEY-----(?:[A-Za-z0-9+/=\s:,._]|-(?!----))*+"
        r"(?:-----END[A-Z ]{0,40}PRIVATE KEY-----)?",
        rule="PEM `BEGIN ... PRIVATE KEY` block; redacted through END, or to the end of the "
        "base64 body when the END line is missing (fail closed)",
    ),
    Detector(
        "jwt",
        Category.CREDENTIAL,
        rf"(?<![{_B64}])eyJ[{_B64}]{{5,}}+\.eyJ[{_B64}]{{5,}}+\.[{_B64}]*+",
        rule='three base64url segments; header and payload start with `eyJ` (`{"`)',
    ),
    Detector(
        "url_credentials",
        Category.CREDENTIAL,
        r"(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{1,30}+://[^\s:/@]{0,256}+:"
        r"(?P<url_credentials_pass>[^\s@/]{1,256}+)@",
        validate=lambda m: [m.span("url_credentials_pass")],
        rule="`scheme://user:password@`; only the password is replaced",
    ),
    Detector(
        "authorization",
        Category.CREDENTIAL,
        r"(?i:authorization)[\"']?\s{0,5}[:=]\s{0,5}[\"']?"
        r"(?:(?i:bearer|basic|digest|token|negotiate)\s{1,5})?"
        r"(?P<authorization_val>[^\s\"',;]{4,}+)",
        validate=lambda m: [m.span("authorization_val")],
        rule="`Authorization: <scheme> <credentials>` (header or key=value); the credentials",
    ),
    Detector(
        "bearer",
        Category.CREDENTIAL,
        r"(?<![A-Za-z0-9_])(?i:bearer|basic|token)\s{1,5}(?P<bearer_token>[A-Za-z0-9._~+/=\-]{8,}+)",
        validate=_bearer_span,
        rule="`Bearer|Basic|Token <credentials>` with credentials of 24+ characters, or 8+ "
        "containing a digit",
    ),
    Detector(
        "assignment",
        Category.CREDENTIAL,
        r"(?<![A-Za-z0-9])(?i:password|passwd|pwd|secret|api[_\-]?key|access[_\-]?token"
        r"|client[_\-]?secret|private[_\-]?key)[\"']?\s{0,3}[:=]\s{0,3}[\"']?"
        r"(?P<assignment_val>[^\s\"',;&]{1,256}+)",
        validate=_assignment_span,
        rule="`password=...`, `secret: ...`, `api_key=...` in free text; the value (not "
        "`true`/`false`/`null` or a bare integer)",
    ),
    Detector(
        "aws_access_key_id",
        Category.CREDENTIAL,
        _AL + r"(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z0-9]{16}" + _AR,
        rule="AWS key-id prefix (`AKIA`, `ASIA`, ...) + 16 upper-case alphanumerics",
    ),
    Detector(
        "provider_token",
        Category.CREDENTIAL,
        _AL + r"(?:gh[pousr]_[A-Za-z0-9]{36,255}+|github_pat_[A-Za-z0-9_]{22,255}+"
        r"|xox[abposr]-[A-Za-z0-9\-]{10,250}+|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,247}+"
        r"|whsec_[A-Za-z0-9]{24,}+|AIza[A-Za-z0-9_\-]{35}|glpat-[A-Za-z0-9_\-]{20,}+"
        r"|npm_[A-Za-z0-9]{36}|sk-(?:proj-)?[A-Za-z0-9_\-]{32,}+)",
        rule="well-known prefixes: GitHub `ghp_/gho_/ghu_/ghs_/ghr_/github_pat_`, Slack "
        "`xox?-`, Stripe `sk_/rk_live|test_`, `whsec_`, Google `AIza`+35, GitLab `glpat-`, "
        "npm `npm_`, OpenAI `sk-`",
    ),
    Detector(
        "email",
        Category.PII,
        r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}+@(?:[A-Za-z0-9\-]{1,63}+\.){1,8}+"
        r"[A-Za-z]{2,24}+(?![A-Za-z0-9\-])",
        rule="local part (1-64) `@` 1-8 dot-separated labels and an alphabetic TLD",
    ),
    Detector(
        "iban",
        Category.FINANCIAL,
        _AL + r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}+",
        validate=_iban_span,
        rule="country code with its ISO 13616 length, mod-97 checksum == 1; spaces allowed",
    ),
    Detector(
        "aws_secret_key",
        Category.CREDENTIAL,
        r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])",
        validate=_aws_secret_span,
        rule="exactly 40 base64 characters mixing upper case, lower case and digits "
        "(so hex SHA-1 digests are not matched)",
    ),
    Detector(
        "ipv4",
        Category.NETWORK,
        r"(?<![A-Za-z0-9.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![A-Za-z0-9]|\.[0-9])",
        validate=_ipv4_span,
        rule="four dotted octets 0-255 without leading zeros",
    ),
    Detector(
        "ipv6",
        Category.NETWORK,
        r"(?<![A-Za-z0-9:.])(?=[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:]{2,39}+(?:\.[0-9.]{3,15}+)?"
        r"(?![A-Za-z0-9:])",
        validate=_ipv6_span,
        rule="parses as an IPv6 address (full, `::`-compressed or IPv4-mapped)",
    ),
    Detector(
        "card",
        Category.PCI,
        _AL + r"(?=(?:[ \-]?[0-9]){13})[2-6][0-9]*+(?:[ \-][0-9]++)*+",
        validate=card_spans,
        rule="13-19 digits (spaces/dashes allowed), a known IIN range and length (Visa incl. "
        "19-digit, Mastercard 51-55 and 2221-2720, Amex, Discover, JCB, Diners, UnionPay, "
        "Maestro), Luhn-valid; also integers",
    ),
    Detector(
        "ssn",
        Category.PII,
        r"(?<![A-Za-z0-9\-])(?P<ssn_a>[0-9]{3})(?P<ssn_sep>[\- ])(?P<ssn_g>[0-9]{2})"
        r"(?P=ssn_sep)(?P<ssn_s>[0-9]{4})(?![A-Za-z0-9\-])",
        validate=_ssn_span,
        rule="`AAA-GG-SSSS` (dashes or spaces); area not 000/666/900-999, group not 00, "
        "serial not 0000",
    ),
    Detector(
        "phone",
        Category.PII,
        r"(?<![A-Za-z0-9+])(?:"
        r"(?:\+|00)[1-9][0-9]{0,3}(?:[ .\-]{0,2}\(?[0-9]{1,5}\)?){1,6}+"
        r"|(?:1[ .\-]?)?(?:\([0-9]{3}\) ?|[0-9]{3}[ .\-])[0-9]{3}[ .\-][0-9]{4}"
        r"|0[0-9]{2,4}[ \-]?[0-9]{3,4}[ \-]?[0-9]{3,4}"
        r")(?:\s?(?:x|ext\.?)\s?[0-9]{1,6})?(?![0-9])",
        validate=_phone_span,
        rule="E.164 / `00` international (8-15 digits), North American `(AAA) BBB-CCCC` / "
        "`AAA-BBB-CCCC` / `AAA.BBB.CCCC`, or national trunk `0...` with separators (10-11 "
        "digits); optional extension",
    ),
)

# Not a sensitive value, but neutralized on its way to logs: CR, LF, NEL, LS, PS, ESC, CSI
# and the other C0/C1 controls except TAB.
CONTROL_PATTERN = r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]"


def compile_detectors(
    detectors: Sequence[Detector], *, control: bool
) -> tuple[re.Pattern[str], list[tuple[Detector, re.Pattern[str]]]]:
    """One alternation over every detector (a prefilter: no match means nothing to do),
    plus each detector's own compiled pattern for the exact pass."""
    names = [d.name for d in detectors]
    if len(set(names)) != len(names):
        raise ValueError(f"detector names must be unique, got {names}")
    parts = [f"(?P<{d.name}>{d.pattern})" for d in detectors]
    if control:
        parts.append(f"(?P<_control>{CONTROL_PATTERN})")
    combined = re.compile("|".join(parts))
    each = [(d, re.compile(f"(?P<{d.name}>{d.pattern})")) for d in detectors]
    return combined, each


CONTROL_RE = re.compile(CONTROL_PATTERN)
CARD_WHOLE = re.compile(r"(?P<card>[0-9]{13,19})")
