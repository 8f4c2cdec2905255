"""The prefilter and the gates: which built-in detectors can match a string, and where.

Python's ``re`` runs one pattern per pass, so the cost of scanning is the number of passes.
The prefilter (:data:`TRIGGER`, :func:`has_key_word`, the base64 runs) decides in a few C
searches whether a value can hold anything at all; for values it lets in,
:func:`builtin_candidates` picks the detectors that can match and the offset each one's
scan may start at, from cheap necessary conditions (one pass over the numbers of the
string, literal prefixes, the position of ``@``, of a credential word, of a base64 run).
Every condition here is *necessary* for its detector; ``tests/test_scrub_fastpaths.py``
checks the shortcuts against a full scan on generated inputs.
"""

from __future__ import annotations

import re

__all__ = [
    "B64_RUN",
    "BENIGN_SHAPE",
    "KEY_WORDS",
    "MIN_ENCODED",
    "TRIGGER",
    "aws_secret_at",
    "builtin_candidates",
    "encoded_runs",
    "has_key_word",
    "key_word_at",
]


def _trigger() -> re.Pattern[str]:
    """A necessary condition for any built-in detector to match, as one fast expression.

    Every alternative starts with a literal so that ``re`` skips other characters in C:
    a digit that starts the shape of a card (12 digits), SSN, phone (North American,
    national trunk ``0``, ``+`` or ``00`` international), dotted quad (IPv4) or follows
    an IBAN's country code; ``::`` or eight colon groups (IPv6), ``@``,
    a JWT's ``.eyJ``, provider-token separators, AWS key-id prefixes. Words (credential
    keys, ``bearer``, ``authorization``) are :data:`KEY_WORDS`, searched in the lower-cased
    text: letters are too common to start branches of this expression.
    (AWS secret keys — 40 base64 characters — are checked separately.)
    """
    # Each lookahead is tried at every digit, so the shapes that begin with two more
    # digits share one lookahead (it fails on the third character of most numbers) and
    # repetitions are possessive: same language, fewer steps.
    shapes = "|".join(
        [
            r"(?=[0-9]{2}(?:"
            r"[\- .][0-9]{2}[\- .][0-9]{4}"  # SSN
            r"|[ .\-)]{1,2}[0-9]{3}[ .\-][0-9]{4}"  # North American phone
            r"|[0-9]{7}))",  # bare 10-digit phone
            r"(?=(?:[ \-./_]?+[0-9]){11})",  # card: 12+ digits, single separators
            r"(?=[0-9]{0,2}+\.[0-9]{1,3}+\.[0-9]{1,3}+\.[0-9])",  # IPv4
            r"(?<=[A-Za-z][A-Za-z][0-9])(?=[0-9])",  # IBAN check digits
        ]
    )
    branches = [d + f"(?:{shapes})" for d in "123456789"]
    branches += [
        # 0: the same shapes, a national trunk prefix, or 00 + country code.
        f"0(?:{shapes}|(?<![A-Za-z0-9+]0)(?=[1-9](?:[ \\-/)]{{0,2}}+[0-9]){{8}})"
        "|(?<![0-9]0)(?=0[1-9](?:[ .\\-()/]{0,4}+[0-9]){6}))",
        r"\+(?=[ (]?[0-9])",
        r"\((?=0[1-9])",
        "@",
        r"\.(?=eyJ)",
        r":(?:(?=:)|(?=(?:[0-9A-Fa-f]{1,4}:){6}))",
        r"-(?:(?=----BEGIN)|(?<=xox[abposr]-)|(?<=glpat-)|(?<=sk-))",
        r"_(?:(?<=[sr]k_)|(?<=whsec_)|(?<=npm_)|(?<=gh[pousr]_)|(?<=github_pat_))",
        "A(?=KIA|SIA|BIA|CCA|GPA|IDA|IPA|NPA|NVA|ROA|PKA|SCA|Iza)",
    ]
    return re.compile("|".join(branches))


TRIGGER = _trigger()


KEY_WORDS = re.compile(
    r"passw|passphrase|pwd|secret|token|api[_\-.]?key|access[_\-.]?key|private[_\-.]?key"
    r"|cookie|credential|jwt|sess(?:ion)?[_\-.]?id|authorization|bearer|basic"
)
"""In the lower-cased text: a necessary condition for the credential-word detectors
(``assignment``, ``cookie_header``, ``authorization``, ``bearer``)."""


# Cheap necessary conditions (each starts with a digit or a literal, so ``re`` skips other
# characters in C) that choose which detectors run on a string the prefilter let in, and
# where their scan may start.
_AWS_ID_GATE = re.compile(r"A(?:KIA|SIA|BIA|CCA|GPA|IDA|IPA|NPA|NVA|ROA|PKA|SCA)")
_IBAN_GATE = re.compile(r"[0-9]{2}(?<=[A-Za-z]{2}[0-9]{2})(?<![A-Za-z0-9][A-Za-z]{2}[0-9]{2})")
# Numbers of 7+ characters with their separators: one pass finds where a card, SSN,
# phone or IPv4 address can start (each needs a run this long).
_NUMERIC = re.compile(r"[0-9+(][0-9 ()./_+\-]{6,}+")
_SSN_SHAPE = re.compile(r"[0-9]{3}[\- .][0-9]{2}[\- .][0-9]{4}")
# Every phone alternative contains one of these: "+", "(0", a leading "0" (trunk or "00"),
# the North American 3-3-4 groups, or ten digits in a row.
_PHONE_SHAPE = re.compile(
    r"\+[ (]?[0-9]|\(0[1-9]|0(?<![0-9]0)(?:0[1-9]|[1-9][0-9]{1,4}[ \-/]?[0-9]{3})"
    r"|[0-9]{3}[ .\-)]{1,2}[0-9]{3}[ .\-][0-9]{4}|[2-9][0-9]{9}"
)
_DIGITS = b"0123456789"
_PROVIDER_GATE = re.compile(
    r"_(?:(?<=[sr]k_live_)|(?<=[sr]k_test_)|(?<=whsec_)|(?<=npm_)|(?<=gh[pousr]_)"
    r"|(?<=github_pat_))|-(?:(?<=xox[abposr]-)|(?<=glpat-)|(?<=sk-))"
)


def key_word_at(v: str) -> int:
    """Where the first credential word starts, or -1, when a separator one of the word
    detectors needs is present: ``=``, ``:``, ``>`` or ``--`` (assignments, headers,
    options), a line break or other control (then the text is not printable), or a plain
    space or tab after ``bearer`` / ``basic`` / ``token``."""
    if ":" in v or "=" in v or ">" in v or "--" in v or not v.isprintable():
        m = KEY_WORDS.search(v.lower())
        return -1 if m is None else m.start()
    if (" " in v or "\t" in v) and (
        "earer" in v or "asic" in v or "oken" in v or "EARER" in v or "ASIC" in v or "OKEN" in v
    ):
        m = KEY_WORDS.search(v.lower())
        return -1 if m is None else m.start()
    return -1


def has_key_word(v: str) -> bool:
    """See :func:`key_word_at`."""
    return key_word_at(v) >= 0


def _at(m: re.Match[str] | None, back: int) -> int:
    return -1 if m is None else max(m.start() - back, 0)


def builtin_candidates(v: str, nd: int, word_at: int, b64_40: int) -> list[tuple[str, int, int]]:
    """The built-in detectors that can possibly match ``v`` (``nd`` digits; ``word_at``:
    :func:`key_word_at`; ``b64_40``: where the first mixed-case base64 run of 40+ starts,
    or -1), in detector order,
    each with the region ``[start, end)`` its scan may be limited to (no match of it, nor
    anything its look-arounds read, lies outside). One function instead of seventeen gate
    calls: this is the hot path."""
    out: list[tuple[str, int, int]] = []
    n = len(v)
    if "PRIVATE KEY" in v:
        out.append(("private_key", max(v.find("-----BEGIN"), 0), n))
    if "eyJ" in v:
        out.append(("jwt", v.find("eyJ"), n))
    if n >= 14 and (
        "AIza" in v or (("_" in v or "-" in v) and _PROVIDER_GATE.search(v) is not None)
    ):
        out.append(("provider_token", 0, n))
    if n >= 20 and "A" in v:
        pos = _at(_AWS_ID_GATE.search(v), 0)
        if pos >= 0:
            out.append(("aws_access_key_id", pos, n))
    at = v.find("@")
    if at >= 0 and "://" in v:
        out.append(("url_credentials", v.find("://"), n))
    if word_at >= 0:
        # Key words start at most 4 characters before the stem KEY_WORDS found
        # ("php_sessid", "Set-Cookie").
        pos = max(word_at - 4, 0)
        if "uthorization" in v or "UTHORIZATION" in v:
            out.append(("authorization", pos, n))
        if "earer" in v or "asic" in v or "oken" in v or "EARER" in v or "ASIC" in v or "OKEN" in v:
            out.append(("bearer", pos, n))
        if "ookie" in v or "OOKIE" in v:
            out.append(("cookie_header", pos, n))
        if "=" in v or ":" in v or ">" in v or "--" in v:
            out.append(("assignment", pos, n))
    if at >= 0:
        out.append(("email", max(at - 65, 0), n))
    short = n < _SHORT
    if nd >= 4 and n >= 15 and nd != n:
        pos = 0 if short else _at(_IBAN_GATE.search(v), 4)
        if pos >= 0:
            out.append(("iban", pos, n))
    if b64_40 >= 0 and nd:
        out.append(("aws_secret_key", b64_40, n))
    if "::" in v or v.count(":") >= 7:
        out.append(("ipv6", 0, n))
    if nd >= 4:
        if not short:
            out += _numeric(v, nd)
        else:
            # A short value: gates would cost about what the detectors cost.
            if "." in v:
                out.append(("ipv4", 0, n))
            if nd >= 12:
                out.append(("card", 0, n))
            if nd >= 9 and ("-" in v or " " in v or "." in v):
                out.append(("ssn", 0, n))
            if nd >= 8 and not (nd == n and n > 11):
                out.append(("phone", 0, n))
    return out


_SHORT = 48
"""Values shorter than this skip the regular-expression gates (see builtin_candidates)."""


def _numeric(v: str, nd: int) -> list[tuple[str, int, int]]:
    """Card, IPv4, SSN and phone candidates from the numbers in ``v`` (each with the
    region from the first to the last number that can hold one; the SSN and phone shapes
    are checked on the number alone, which is short).

    Every character a card, SSN, IPv4 address or phone number (before its extension)
    consists of is one of ``_NUMERIC``'s and each starts with one of its first
    characters, so every match lies inside one number found here."""
    card = ipv4 = ssn = phone = -1
    card_end = ipv4_end = ssn_end = phone_end = 0
    for m in _NUMERIC.finditer(v):
        tok = m.group()
        start, end = m.span()
        if tok.count(".") >= 3:
            if ipv4 < 0:
                ipv4 = start
            ipv4_end = end
        raw = tok.encode()
        digits = len(raw) - len(raw.translate(None, _DIGITS))
        if digits < 8:
            continue  # no card, SSN or phone (dates, amounts, versions)
        if digits >= 12:
            if card < 0:
                card = start
            card_end = end
        if digits >= 9 and _SSN_SHAPE.search(tok) is not None:
            if ssn < 0:
                ssn = start
            ssn_end = end
        if (
            digits >= 8
            # A plain number of 15+ digits holds no phone: one starts only at the number's
            # start and ends at its end, and only "00" + country code runs that long.
            and not (digits >= 15 and digits == len(tok) and not tok.startswith("00"))
            and _PHONE_SHAPE.search(tok) is not None
        ):
            if phone < 0:
                phone = max(start - 4, 0)  # "1 (555) 234-5678" starts before its number
            phone_end = end
    n = len(v)
    out = []
    # Each region ends a little after its last number: the detectors' look-aheads read
    # one character beyond a match, and a phone's extension (" ext. 123456") follows it.
    if ipv4 >= 0:
        out.append(("ipv4", ipv4, min(ipv4_end + 2, n)))
    if card >= 0:
        out.append(("card", card, min(card_end + 1, n)))
    if ssn >= 0:
        out.append(("ssn", ssn, min(ssn_end + 2, n)))
    if phone >= 0 and not (nd == len(v) and nd > 11):
        out.append(("phone", phone, min(phone_end + 16, n)))
    return out


# Runs of base64 (standard or URL-safe) long enough to be decoded and scanned, or to be an
# AWS secret key (40). Only mixed-case runs qualify: see ``encoded_runs``.
B64_RUN = re.compile(r"[A-Za-z0-9+/_\-]{16,}+={0,2}")

MIN_ENCODED = 16
"""Shortest base64 run that is decoded and scanned (12 bytes of text)."""


_B64_SPLIT = re.compile(r"[_\-]")


def aws_secret_at(runs: list[re.Match[str]]) -> int:
    """Where the first run that holds exactly 40 standard-base64 characters starts (an AWS
    secret key candidate), or -1."""
    for m in runs:
        if m.end() - m.start() >= 40:
            run = m.group().rstrip("=")
            pieces = _B64_SPLIT.split(run) if ("_" in run or "-" in run) else [run]
            if any(len(piece) == 40 for piece in pieces):
                return m.start()
    return -1


def encoded_runs(text: str) -> list[re.Match[str]]:
    """Base64 runs worth decoding: 16+ characters mixing upper and lower case (text
    encoded in base64 always does; identifiers and hex digests mostly do not)."""
    out = []
    for m in B64_RUN.finditer(text):
        run = m.group()
        if not (run.islower() or run.isupper() or run.isdigit()):
            out.append(m)
    return out


# Whole values of these shapes cannot hold anything the built-in detectors look for:
# ISO-8601 dates/timestamps, UUIDs, hex digests (MD5/SHA-1/SHA-256/SHA-512).
BENIGN_SHAPE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?"
    r"(?:Z|[+\-][0-9]{2}:?[0-9]{2})?)?"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|(?:[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64}|[0-9a-f]{128})"
)
