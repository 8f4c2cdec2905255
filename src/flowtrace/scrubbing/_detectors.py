"""Value-shape detectors: a regular expression plus a validation rule each.

Every pattern is built to run in linear time on Python's backtracking ``re`` engine:
each candidate can only *start* at a word boundary enforced by a negative lookbehind,
every repetition is bounded and possessive (``{m,n}+``) so a failed candidate is never
re-tried with a shorter split, and alternatives begin with distinct characters. Which
detectors run on a string, and from where, is decided by ``_prefilter``. Detectors see the
normalised view of a string (``_normalize``): ASCII digits, plain spaces, no zero-width
characters.

A detector's ``validate`` returns the span to replace (often a sub-span: the password in a
URL, the token after ``Bearer``) or ``None`` to reject the candidate (a card number that
fails Luhn is not a card).
"""

from __future__ import annotations

import dataclasses
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
    with ``name + "_"`` so that detectors combine into one expression.

    Example::

        from flowtrace import Category, Scrubber
        from flowtrace.scrubbing import BUILTIN_DETECTORS, Detector

        employee = Detector("employee_id", Category.PII, r"EMP-[0-9]{6}")
        scrubber = Scrubber(detectors=[*BUILTIN_DETECTORS, employee])
        assert scrubber.scrub_text("approved by EMP-123456") == "approved by [REDACTED:employee_id]"
    """

    name: str
    category: Category
    pattern: str
    validate: Validator | None = field(default=None, compare=False)
    rule: str = ""
    """Human-readable validation rule (rendered in the docs' detector table)."""
    gate: Callable[[str, int], bool] | None = field(default=None, compare=False)
    """Cheap necessary condition on (text, number of digits in it); ``False`` skips."""
    builtin: bool = field(default=False, compare=False)
    """Built-in detectors are covered by the engine's trigger prefilter."""

    def spans(self, m: re.Match[str]) -> Sequence[Span]:
        """The spans to replace for a match of this detector's group (empty: rejected)."""
        if self.validate is None:
            return (m.span(self.name),)
        return self.validate(m)


_AL = r"(?<![A-Za-z0-9])"  # left alnum boundary
_AR = r"(?![A-Za-z0-9])"  # right alnum boundary


# --- validators ---------------------------------------------------------------------------


_CARD_SEPARATORS = str.maketrans("-./_", "    ")


def card_spans(m: re.Match[str], group: str = "card") -> list[Span]:
    """A Luhn-valid card with a known IIN range starting at this digit group.

    The pattern matches (zero-width) at every digit group that starts a run of groups, so
    a card next to other numbers ("1234 4111 1111 1111 1111") is tried from its own
    group. Candidates end at a group boundary, longest first; a contiguous digit string is
    only ever tried whole.
    """
    start = m.start(group)
    run = m.string[start : m.end(group + "_run")]
    if run.isdigit():
        # One group (the common case): only the whole run is a candidate.
        ok = 12 <= len(run) <= 19 and card_brand(run) is not None and luhn_valid(run)
        return [(start, start + len(run))] if ok else []
    digits = ""
    offset = start
    candidates: list[tuple[str, int]] = []
    for part in run.translate(_CARD_SEPARATORS).split(" "):
        digits += part
        offset += len(part)
        if len(digits) > 19:
            break
        if len(digits) >= 12:
            candidates.append((digits, offset))
        offset += 1  # the separator
    for number, end in reversed(candidates):
        if card_brand(number) and luhn_valid(number):
            return [(start, end)]
    return []


def _iban_span(m: re.Match[str]) -> list[Span]:
    from ._checks import _IBAN_LENGTHS

    # Zero-width after the first letter, so that a rejected candidate ("AA00 DE89...")
    # does not swallow the IBAN that starts inside it.
    start, end = m.start("iban"), m.end("iban_run")
    text = m.string[start:end].upper()
    want = _IBAN_LENGTHS.get(text[:2])
    if want is None:
        return []
    # The span ends at the want-th non-space character (spaces are single, between
    # characters); it must not run on into more alphanumerics and must pass mod-97.
    count = 0
    pos = 0
    for part in text.split(" "):
        if count + len(part) >= want:
            last = start + pos + (want - count)  # one past the want-th character
            after = m.string[last : last + 1]
            if after.isalnum() or not iban_valid(text.replace(" ", "")[:want]):
                return []
            return [(start, last)]
        count += len(part)
        pos += len(part) + 1
    return []


def _ssn_span(m: re.Match[str]) -> list[Span]:
    if ssn_valid(m.group("ssn")[:3], m.group("ssn_g"), m.group("ssn_s")):
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
    if main.startswith("(0"):
        ok = 10 <= digits <= 11
    elif main.startswith("0"):
        # National trunk prefix: 10-11 digits; without separators only if it does not look
        # zero-padded ("00...").
        ok = 10 <= digits <= 11 and (any(ch in " -." for ch in main) or main[1] != "0")
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


def _group_span(group: str) -> Validator:
    """A validator replacing just the inner ``group`` of every match (no further check)."""

    def spans(m: re.Match[str]) -> list[Span]:
        return [m.span(group)]

    return spans


# Credential key words in free text, by first letter: the same words as the built-in key
# rules (tests/test_scrub_text_keys.py checks each one against Scrubber.classify).
CREDENTIAL_KEY_STEMS: dict[str, str] = {
    "p": r"ass(?:word|wd|phrase)|wd|rivate[_\-.]?key|hp_?sess(?:ion)?[_\-.]?id",
    "s": r"ecret|ess(?:ion)?[_\-.]?id",
    "t": r"oken",
    "a": r"pi[_\-.]?key|ccess[_\-.]?key",
    "c": r"ookie|redentials?",
    "j": r"wt|sess(?:ion)?[_\-.]?id",
}


def _credential_key() -> str:
    """A credential key inside an identifier: the stem starts the identifier or a word of
    it (``access_token``, ``x-api-key``, ``userPassword``); more words may follow
    (``password_hash``), never more letters (``tokens``, ``passwordless``)."""
    stems = "|".join(
        f"[{c}{c.upper()}](?:(?<![A-Za-z0-9].)|(?<=[a-z][A-Z]))(?i:{rest})"
        for c, rest in CREDENTIAL_KEY_STEMS.items()
    )
    return (
        rf"(?:{stems})(?:[_\-.][A-Za-z0-9]{{1,24}}+|[A-Z][a-z0-9]{{0,24}}+){{0,3}}+(?![A-Za-z0-9])"
    )


def _key_start(m: re.Match[str]) -> int:
    """Where the identifier holding the matched key word starts (``x-api-key``,
    ``client_secret``): back over letters, digits, ``_``, ``.`` and single inner ``-``."""
    text, i = m.string, m.start("assignment")
    while i > 0:
        ch = text[i - 1]
        if ch.isalnum() or ch in "_." or (ch == "-" and i > 1 and text[i - 2].isalnum()):
            i -= 1
        else:
            break
    return i


def _assignment_span(m: re.Match[str]) -> list[Span]:
    sep = m.group("assignment_sep")
    if sep is not None and "=" not in sep and ":" not in sep:
        # "--password hunter2": a bare space separates only a command-line option.
        start = _key_start(m)
        if m.string[max(start - 2, 0) : start] != "--":
            return []
    for group in ("assignment_qv", "assignment_xml"):
        if m.group(group) is not None:
            val = m.group(group)
            if val.startswith(("[REDACTED", "[PSEUDO")) or not val.strip():
                return []
            if group == "assignment_xml" and m.string[_key_start(m) - 1 : _key_start(m)] != "<":
                return []
            return [m.span(group)]
    val = m.group("assignment_val")
    if val.lower() in _BENIGN_ASSIGNED or val.startswith(("[REDACTED", "[PSEUDO")) or val.isdigit():
        return []
    return [m.span("assignment_val")]


# --- the built-in detectors ---------------------------------------------------------------

_B64 = r"A-Za-z0-9_\-"

BUILTIN_DETECTORS: tuple[Detector, ...] = (
    Detector(
        "private_key",
        Category.CREDENTIAL,
        r"-----BEGIN[A-Z ]{0,40}PRIVATE KEY-----(?:[A-Za-z0-9+/=\s:,._\\]|-(?!----))*+"
        r"(?:-----END[A-Z ]{0,40}PRIVATE KEY-----)?",
        rule="PEM `BEGIN ... PRIVATE KEY` block; redacted through END, or to the end of the "
        "base64 body when the END line is missing (fail closed)",
        gate=lambda v, nd: "PRIVATE KEY" in v,
    ),
    Detector(
        "jwt",
        Category.CREDENTIAL,
        rf"(?<![{_B64}])eyJ[{_B64}]{{5,}}+\.eyJ[{_B64}]{{5,}}+\.[{_B64}]*+",
        rule='three base64url segments; header and payload start with `eyJ` (`{"`)',
        gate=lambda v, nd: "eyJ" in v,
    ),
    Detector(
        "provider_token",
        Category.CREDENTIAL,
        r"(?:gh[pousr]_[A-Za-z0-9]{36,255}+|github_pat_[A-Za-z0-9_]{22,255}+"
        r"|xox[abposr]-[A-Za-z0-9\-]{10,250}+|(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,247}+"
        r"|whsec_[A-Za-z0-9]{24,}+|AIza[A-Za-z0-9_\-]{35}|glpat-[A-Za-z0-9_\-]{20,}+"
        r"|npm_[A-Za-z0-9]{36}|sk-(?:proj-)?[A-Za-z0-9_\-]{32,}+)",
        rule="well-known prefixes: GitHub `ghp_/gho_/ghu_/ghs_/ghr_/github_pat_`, Slack "
        "`xox?-`, Stripe `sk_/rk_live|test_`, `whsec_`, Google `AIza`+35, GitLab `glpat-`, "
        "npm `npm_`, OpenAI `sk-`",
        gate=lambda v, nd: (
            len(v) >= 14 and ("_" in v or "xox" in v or "AIza" in v or "glpat-" in v or "sk-" in v)
        ),
    ),
    Detector(
        "aws_access_key_id",
        Category.CREDENTIAL,
        r"A(?<![A-Za-z0-9]A)(?:KIA|SIA|BIA|CCA|GPA|IDA|IPA|NPA|NVA|ROA|PKA|SCA)[A-Z0-9]{16}" + _AR,
        rule="AWS key-id prefix (`AKIA`, `ASIA`, ...) + 16 upper-case alphanumerics",
        gate=lambda v, nd: len(v) >= 20 and "A" in v,
    ),
    Detector(
        "url_credentials",
        Category.CREDENTIAL,
        r"://[^\s:/@]{0,256}+:"
        r"(?P<url_credentials_pass>[^\s@/]{1,256}+)@",
        validate=_group_span("url_credentials_pass"),
        rule="`scheme://user:password@`; only the password is replaced",
        gate=lambda v, nd: "@" in v and "://" in v,
    ),
    Detector(
        "authorization",
        Category.CREDENTIAL,
        r"[Aa](?i:uthorization)[\"']?\s{0,5}[:=]\s{0,5}[\"']?"
        r"(?:(?i:bearer|basic|digest|token|negotiate)\s{1,5})?"
        r"(?P<authorization_val>[^\s\"',;]{4,}+)",
        validate=_group_span("authorization_val"),
        rule="`Authorization: <scheme> <credentials>` (header or key=value); the credentials",
        gate=lambda v, nd: "uthorization" in v or "UTHORIZATION" in v,
    ),
    Detector(
        "bearer",
        Category.CREDENTIAL,
        r"[BbTt](?<![A-Za-z0-9_].)(?i:earer|asic|oken)\s{1,5}(?P<bearer_token>[A-Za-z0-9._~+/=\-]{8,}+)",
        validate=_bearer_span,
        rule="`Bearer|Basic|Token <credentials>` with credentials of 24+ characters, or 8+ "
        "containing a digit",
        gate=lambda v, nd: any(w in v for w in ("earer", "asic", "oken", "EARER", "ASIC", "OKEN")),
    ),
    Detector(
        "cookie_header",
        Category.CREDENTIAL,
        r"[CcSs](?<![A-Za-z0-9\-].)(?:(?i:et-)[Cc])?(?i:ookie)[ \t]{0,3}:[ \t]{0,3}"
        r"(?P<cookie_header_val>[^\r\n\"\\]{1,4096}+)",
        validate=_group_span("cookie_header_val"),
        rule="`Cookie:` / `Set-Cookie:` header; every pair to the end of the line",
        gate=lambda v, nd: "ookie" in v or "OOKIE" in v,
    ),
    Detector(
        "assignment",
        Category.CREDENTIAL,
        _credential_key() + r"(?:\\{0,7}[\"'])?"
        r"(?:(?P<assignment_sep>[ \t]{0,3}[:=][ \t]{0,3}|[ \t]{1,3})"
        r"(?:(?P<assignment_q>\\{0,7}[\"'])(?P<assignment_qv>[^\"'\\\r\n]{1,256}+)"
        r"|(?P<assignment_val>[^\s\"',;&<>\\]{1,256}+))"
        r"|>(?P<assignment_xml>[^<\r\n]{1,256}+))",
        validate=_assignment_span,
        rule="a credential key (the built-in key rules' words: `password`, `secret`, `token`, "
        "`api_key`, `access_token`, `cookie`, `session_id`, ...) with its value in free text: "
        '`k=v`, `?k=v&`, `k: v`, `"k": "v"` (also JSON-escaped), `<k>v</k>`, `--k v`; '
        "a quoted value whole (not `true`/`false`/`null` or a bare integer)",
        gate=lambda v, nd: True,
    ),
    Detector(
        "email",
        Category.PII,
        r"(?<![\w.%+\-])[\w.%+\-]{1,64}+@(?:[\w\-]{1,63}+\.){1,8}"
        r"(?:[^\W\d_]{2,24}+|xn--[A-Za-z0-9\-]{1,59}+)(?![\w\-])",
        rule="local part (1-64) `@` 1-8 dot-separated labels and an alphabetic TLD; Unicode "
        "letters allowed (internationalised addresses), punycode `xn--` TLDs",
        gate=lambda v, nd: "@" in v,
    ),
    Detector(
        "iban",
        Category.FINANCIAL,
        r"[A-Za-z](?<![A-Za-z0-9].)(?=(?P<iban_run>[A-Za-z][0-9]{2}(?: ?[A-Za-z0-9]){11,30}+))",
        validate=_iban_span,
        rule="country code with its ISO 13616 length, mod-97 checksum == 1; spaces allowed, "
        "either case",
        gate=lambda v, nd: nd >= 4 and len(v) >= 15 and not v.isdigit(),
    ),
    Detector(
        "aws_secret_key",
        Category.CREDENTIAL,
        r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])",
        validate=_aws_secret_span,
        rule="exactly 40 base64 characters mixing upper case, lower case and digits "
        "(so hex SHA-1 digests are not matched)",
        gate=lambda v, nd: nd >= 1 and len(v) >= 40,
    ),
    Detector(
        "ipv4",
        Category.NETWORK,
        r"[0-9](?<![A-Za-z0-9.].)[0-9]{0,2}\.(?:[0-9]{1,3}\.){2}[0-9]{1,3}(?![A-Za-z0-9]|\.[0-9])",
        validate=_ipv4_span,
        rule="four dotted octets 0-255 without leading zeros",
        gate=lambda v, nd: nd >= 4 and "." in v,
    ),
    Detector(
        "ipv6",
        Category.NETWORK,
        r"(?<![A-Za-z0-9:.])(?=[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:]{2,39}+(?:\.[0-9.]{3,15}+)?"
        r"(?![A-Za-z0-9:])",
        validate=_ipv6_span,
        rule="parses as an IPv6 address (full, `::`-compressed or IPv4-mapped)",
        gate=lambda v, nd: v.count(":") >= 2,
    ),
    Detector(
        "card",
        Category.PCI,
        r"[0-6](?<![A-Za-z0-9].)(?=(?:[ \-./_]?+[0-9]){11})"
        r"(?=(?P<card_run>[0-9]{2,18}+(?:[ \-./_][0-9]{1,19}+){0,5}+))",
        validate=card_spans,
        rule="12-19 digits (groups separated by a space, `-`, `.`, `/` or `_`), a known IIN "
        "range and length (Visa incl. 19-digit, Mastercard 51-55 and 2221-2720, Amex, "
        "Discover, JCB, Diners, UnionPay, Maestro), Luhn-valid; also integers",
        gate=lambda v, nd: nd >= 12,
    ),
    Detector(
        "ssn",
        Category.PII,
        r"[0-9](?<![A-Za-z0-9\-.].)[0-9]{2}(?P<ssn_sep>[\- .])(?P<ssn_g>[0-9]{2})"
        r"(?P=ssn_sep)(?P<ssn_s>[0-9]{4})(?![A-Za-z0-9\-]|\.[0-9])",
        validate=_ssn_span,
        rule="`AAA-GG-SSSS` (dashes, spaces or dots); area not 000/666/900-999, group not 00, "
        "serial not 0000",
        gate=lambda v, nd: nd >= 9 and ("-" in v or " " in v or "." in v),
    ),
    Detector(
        "phone",
        Category.PII,
        r"(?<![A-Za-z0-9+])(?:"
        r"(?:\+|00)[1-9][0-9]{0,3}(?:[ .\-]{0,2}\(?[0-9]{1,5}\)?){1,6}+"
        r"|(?:1[ .\-]?)?(?:\([0-9]{3}\) ?|[0-9]{3}[ .\-])[0-9]{3}[ .\-][0-9]{4}"
        r"|\(0[1-9][0-9]{1,3}\) ?[0-9]{3,8}(?:[ \-]?[0-9]{2,4})?"
        r"|[2-9][0-9]{2}[2-9][0-9]{6}(?![A-Fa-f][0-9A-Fa-f])"
        r"|0[1-9][0-9]{1,4}[ \-/]?[0-9]{3,8}(?:[ \-][0-9]{2,4})?"
        r")(?:\s?(?:x|ext\.?)\s?[0-9]{1,6})?(?![0-9])",
        validate=_phone_span,
        rule="E.164 / `00` international (8-15 digits, `(0)` allowed), North American "
        "`(AAA) BBB-CCCC` / `AAA-BBB-CCCC` / `AAA.BBB.CCCC` / bare `AAABBBCCCC` (area and "
        "exchange starting 2-9; not continued by hex digits, so a hex id is not a phone), or "
        "national trunk `0...` / `(0..) ...` (10-11 digits); "
        "optional extension",
        gate=lambda v, nd: nd >= 8 and not (len(v) > 11 and v.isdigit()),
    ),
)

BUILTIN_DETECTORS = tuple(dataclasses.replace(d, builtin=True) for d in BUILTIN_DETECTORS)
"""The detectors a :class:`~flowtrace.Scrubber` uses by default (cards, IBANs, keys, tokens...).

Example::

    from flowtrace.scrubbing import BUILTIN_DETECTORS

    print([detector.name for detector in BUILTIN_DETECTORS])   # 'private_key', 'jwt', ...
"""


# Not a sensitive value, but neutralized on its way to logs: CR, LF, NEL, LS, PS, ESC, CSI
# and the other C0/C1 controls except TAB.
CONTROL_PATTERN = r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]"


def compile_detectors(detectors: Sequence[Detector]) -> list[tuple[Detector, re.Pattern[str]]]:
    """Each detector with its compiled pattern (its span group named after it)."""
    names = [d.name for d in detectors]
    if len(set(names)) != len(names):
        raise ValueError(f"detector names must be unique, got {names}")
    return [(d, re.compile(f"(?P<{d.name}>{d.pattern})")) for d in detectors]


CONTROL_RE = re.compile(CONTROL_PATTERN)
CONTROL_RE_KEEP_LF = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
"""Multi-line text (a traceback) keeps its line feeds; every other control is escaped."""
