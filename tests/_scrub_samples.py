"""Valid (checksum-correct) sensitive values for the scrubbing tests; no Faker needed."""

from __future__ import annotations

import random
import string


def luhn_complete(prefix: str, length: int, rnd: random.Random) -> str:
    """A Luhn-valid number of ``length`` digits starting with ``prefix``."""
    body = prefix + "".join(rnd.choice(string.digits) for _ in range(length - len(prefix) - 1))
    for check in string.digits:
        candidate = body + check
        total = 0
        for i, ch in enumerate(reversed(candidate)):
            d = int(ch)
            if i % 2:
                d = d * 2 - 9 if d * 2 > 9 else d * 2
            total += d
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


CARD_PREFIXES = [
    ("4", 16),
    ("4", 13),
    ("4", 19),
    ("51", 16),
    ("55", 16),
    ("2221", 16),
    ("2720", 16),
    ("34", 15),
    ("37", 15),
    ("6011", 16),
    ("65", 16),
    ("3530", 16),
    ("36", 14),
    ("62", 16),
]


def card(rnd: random.Random) -> str:
    prefix, length = rnd.choice(CARD_PREFIXES)
    return luhn_complete(prefix, length, rnd)


def group_card(number: str, sep: str) -> str:
    return sep.join(number[i : i + 4] for i in range(0, len(number), 4))


IBAN_SHAPES = {
    "DE": "8n10n",
    "GB": "4a14n",
    "FR": "23n",
    "NL": "4a10n",
    "ES": "20n",
    "IT": "1a22n",
    "BE": "12n",
    "CH": "17n",
}


def iban(rnd: random.Random) -> str:
    country = rnd.choice(sorted(IBAN_SHAPES))
    bban = ""
    shape = IBAN_SHAPES[country]
    num = ""
    for ch in shape:
        if ch.isdigit():
            num += ch
            continue
        pool = string.digits if ch == "n" else string.ascii_uppercase
        bban += "".join(rnd.choice(pool) for _ in range(int(num)))
        num = ""
    rearranged = bban + country + "00"
    value = int("".join(str(int(c, 36)) for c in rearranged))
    check = 98 - value % 97
    return f"{country}{check:02d}{bban}"


def spaced_iban(value: str) -> str:
    return " ".join(value[i : i + 4] for i in range(0, len(value), 4))


def ssn(rnd: random.Random) -> str:
    area = rnd.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rnd.randint(1, 99):02d}-{rnd.randint(1, 9999):04d}"


def phone(rnd: random.Random) -> str:
    a, b, c = rnd.randint(201, 989), rnd.randint(200, 999), rnd.randint(0, 9999)
    return rnd.choice(
        [
            f"({a}) {b}-{c:04d}",
            f"{a}-{b}-{c:04d}",
            f"{a}.{b}.{c:04d}",
            f"+1 {a} {b} {c:04d}",
            f"+44 20 {b}{rnd.randint(0, 9)} {c:04d}",
            f"+4930{b}{c:04d}",
        ]
    )


def email(rnd: random.Random) -> str:
    user = "".join(rnd.choice(string.ascii_lowercase) for _ in range(rnd.randint(3, 10)))
    dom = "".join(rnd.choice(string.ascii_lowercase) for _ in range(rnd.randint(3, 10)))
    return f"{user}.{rnd.randint(1, 99)}@{dom}.{rnd.choice(['com', 'org', 'io', 'co.uk'])}"


def _alnum(rnd: random.Random, n: int, pool: str = string.ascii_letters + string.digits) -> str:
    return "".join(rnd.choice(pool) for _ in range(n))


def _with_digit(rnd: random.Random, n: int) -> str:
    s = list(_alnum(rnd, n))
    s[rnd.randrange(n)] = rnd.choice(string.digits)
    s[rnd.randrange(n)] = rnd.choice(string.ascii_uppercase)
    s[rnd.randrange(n)] = rnd.choice(string.ascii_lowercase)
    return "".join(s)


def jwt(rnd: random.Random) -> str:
    return "eyJhbGciOiJIUzI1NiJ9.eyJ" + _alnum(rnd, 30) + "." + _alnum(rnd, 43)


def aws_key_id(rnd: random.Random) -> str:
    return "AKIA" + _alnum(rnd, 16, string.ascii_uppercase + "234567")


def aws_secret(rnd: random.Random) -> str:
    return _with_digit(rnd, 40)


def provider_token(rnd: random.Random) -> str:
    return rnd.choice(
        [
            "ghp_" + _alnum(rnd, 36),
            "xoxb-" + str(rnd.randint(10**10, 10**11)) + "-" + _alnum(rnd, 24),
            "sk_live_" + _alnum(rnd, 24),
            "AIza" + _alnum(rnd, 35),
            "github_pat_" + _alnum(rnd, 40),
        ]
    )


def ipv4(rnd: random.Random) -> str:
    return ".".join(str(rnd.randint(1, 254)) for _ in range(4))


def ipv6(rnd: random.Random) -> str:
    groups = [f"{rnd.randint(0, 0xFFFF):x}" for _ in range(8)]
    return rnd.choice([":".join(groups), "2001:db8::" + groups[0], "fe80::" + ":".join(groups[:3])])


# (name, generator, text that must not survive) — the secret part only.
PLANTS = {
    "email": email,
    "card": lambda r: card(r),
    "card_spaced": lambda r: group_card(card(r), " "),
    "card_dashed": lambda r: group_card(card(r), "-"),
    "iban": iban,
    "iban_spaced": lambda r: spaced_iban(iban(r)),
    "ssn": ssn,
    "phone": phone,
    "ipv4": ipv4,
    "ipv6": ipv6,
    "jwt": jwt,
    "aws_key_id": aws_key_id,
    "aws_secret": aws_secret,
    "provider_token": provider_token,
}


def planted_in_context(kind: str, rnd: random.Random) -> tuple[str, str]:
    """(text containing a secret, the secret) for context-bound detectors."""
    if kind == "bearer":
        tok = _with_digit(rnd, 32)
        return f"Bearer {tok}", tok
    if kind == "authorization":
        tok = _with_digit(rnd, 20)
        return f"Authorization: Basic {tok}", tok
    if kind == "url_password":
        pw = _with_digit(rnd, 12)
        return f"postgres://app:{pw}@db.internal:5432/main", pw
    if kind == "private_key":
        body = "\n".join(_alnum(rnd, 64) for _ in range(4))
        key = f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"
        return key, body.split("\n")[1]
    if kind == "assignment":
        pw = _with_digit(rnd, 10)
        return f"password={pw}", pw
    raise KeyError(kind)


CONTEXT_PLANTS = ("bearer", "authorization", "url_password", "private_key", "assignment")
