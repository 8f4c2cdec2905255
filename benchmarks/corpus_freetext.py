"""Free-text-heavy labeled events for the scrubbing benchmark (fixed seed, no Faker).

Each event is a flat 10-12-field dict shaped like a structlog/OTel log event. Its
``event`` message is free text that carries emails, card numbers and JWTs (and, in a
share of events, a credential written as ``key=value``), mixed with benign look-alikes a
scrubber must leave alone: Luhn-failing 16-digit order numbers, version strings, trace
ids, ISO timestamps, durations, ``tokens_used=512``, file names. A share of the sensitive
values is disguised the way an attacker or a copy-paste would (fullwidth digits,
zero-width spaces, NBSP, dotted card groups, a fullwidth ``@``).

Ground truth is planted, not inferred: ``planted`` holds the exact text that must not
survive and ``benign`` the text that must survive unchanged.
"""

from __future__ import annotations

import base64
import json
import random
import string
from dataclasses import dataclass, field
from typing import Any

SEED = 20261204

CATEGORIES = ("pii", "pci", "credential")

_FIRST = ["jane", "omar", "li", "sofia", "ken", "amara", "lukas", "mei", "pedro", "ines"]
_LAST = ["doe", "haddad", "wei", "rossi", "sato", "okafor", "muller", "chen", "silva", "ng"]
_DOMAINS = ["example.com", "mail.example.org", "corp.example.net", "example.co.uk", "exämple.de"]
_VERBS = ["refund", "charge", "login", "signup", "export", "password reset", "invoice"]
_NOTES = [
    "requested by customer",
    "retry 3 of 5",
    "after upstream timeout",
    "see ticket",
    "queued for review",
    "from the mobile app",
]
_CARD_PREFIXES = [("4", 16), ("51", 16), ("2221", 16), ("34", 15), ("6011", 16), ("35", 16)]
_ZW = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]
_CRED_KEYS = ["password", "api_key", "access_token", "refresh_token", "client_secret", "token"]


@dataclass
class LabeledEvent:
    event: dict[str, Any]
    planted: list[tuple[str, str, str]] = field(default_factory=list)
    """(category, kind, text that must not survive)."""
    benign: list[str] = field(default_factory=list)
    """Text that must survive unchanged."""


def _luhn_total(digits: str) -> int:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total


def _card(rnd: random.Random) -> str:
    prefix, length = rnd.choice(_CARD_PREFIXES)
    body = prefix + "".join(rnd.choice(string.digits) for _ in range(length - len(prefix) - 1))
    return next(body + c for c in string.digits if _luhn_total(body + c) % 10 == 0)


def _luhn_fail(rnd: random.Random) -> str:
    while True:
        digits = "4" + "".join(rnd.choice(string.digits) for _ in range(15))
        if _luhn_total(digits) % 10:
            return digits


def _alnum(rnd: random.Random, n: int) -> str:
    pool = string.ascii_letters + string.digits
    return "".join(rnd.choice(pool) for _ in range(n))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class FreeTextCorpus:
    """Generates labeled free-text events deterministically."""

    def __init__(self, seed: int = SEED) -> None:
        self.rnd = random.Random(seed)

    # -- sensitive values (text that must not survive) ------------------------------------

    def email(self) -> tuple[str, str, str]:
        r = self.rnd
        local = f"{r.choice(_FIRST)}.{r.choice(_LAST)}{r.randint(1, 99)}"
        value = f"{local}@{r.choice(_DOMAINS)}"
        if r.random() < 0.08:
            return "pii", "email_fullwidth_at", value.replace("@", "\uff20")
        return "pii", "email", value

    def card(self) -> tuple[str, str, str]:
        r = self.rnd
        number = _card(r)
        roll = r.random()
        if roll < 0.4:
            return "pci", "card", number
        if roll < 0.7:
            sep = r.choice([" ", "-"])
            return "pci", "card_grouped", sep.join(number[i : i + 4] for i in range(0, 16, 4))
        if roll < 0.8:
            return "pci", "card_dotted", ".".join(number[i : i + 4] for i in range(0, 16, 4))
        if roll < 0.9:
            wide = "".join(chr(0xFF10 + int(c)) for c in number)
            return "pci", "card_fullwidth", wide
        zw = r.choice(_ZW)
        return "pci", "card_zero_width", zw.join(number[i : i + 4] for i in range(0, 16, 4))

    def jwt(self) -> tuple[str, str, str]:
        r = self.rnd
        header = _b64url(b'{"alg":"HS256","typ":"JWT"}')
        claims = {"sub": f"u-{r.randint(1, 10**6)}", "iat": r.randint(10**9, 2 * 10**9)}
        payload = _b64url(json.dumps(claims).encode())
        return "credential", "jwt", f"{header}.{payload}.{_alnum(r, 43)}"

    def credential(self) -> tuple[str, str, str, str]:
        """(category, kind, secret, the text form carrying it)."""
        r = self.rnd
        key = r.choice(_CRED_KEYS)
        secret = _alnum(r, r.randint(10, 24))
        form = r.choice(["{k}={v}", '"{k}": "{v}"', "{k}: {v}", "?{k}={v}&page=2"])
        return "credential", "key_value", secret, form.format(k=key, v=secret)

    # -- benign look-alikes (text that must survive) --------------------------------------

    def benign(self) -> str:
        r = self.rnd
        kind = r.randrange(9)
        if kind == 0:
            return f"order {_luhn_fail(r)}"
        if kind == 1:
            return f"v{r.randint(1, 9)}.{r.randint(0, 30)}.{r.randint(0, 20)}"
        if kind == 2:
            return f"trace {r.getrandbits(128):032x}"
        if kind == 3:
            return f"tokens_used={r.randint(1, 4096)}"
        if kind == 4:
            return f"took {r.randint(1, 5000)}ms"
        if kind == 5:
            return f"report_2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}.csv"
        if kind == 6:
            return f"invoice INV-{r.randint(10**5, 10**6)}"
        if kind == 7:
            return "passwordless login enabled"
        return f"at 2026-11-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:14:07Z"

    # -- events -----------------------------------------------------------------------------

    def event(self) -> LabeledEvent:
        r = self.rnd
        labeled = LabeledEvent({})
        parts = [f"{r.choice(_VERBS)} {r.choice(_NOTES)}"]
        for _ in range(r.randint(1, 2)):
            b = self.benign()
            labeled.benign.append(b)
            parts.append(b)
        for _ in range(r.choice([0, 1, 1, 2, 2, 3])):
            pick = r.random()
            if pick < 0.35:
                cat, kind, value = self.email()
                parts.append(f"for {value}")
            elif pick < 0.7:
                cat, kind, value = self.card()
                parts.append(f"card {value}")
            elif pick < 0.9:
                cat, kind, value = self.jwt()
                parts.append(f"with Bearer {value}" if r.random() < 0.5 else f"jwt {value}")
            else:
                cat, kind, value, form = self.credential()
                parts.append(form)
            labeled.planted.append((cat, kind, value))
        r.shuffle(parts)
        uid = r.randint(1, 10**7)
        ev: dict[str, Any] = {
            "event": ", ".join(parts),
            "level": r.choice(["info", "warning", "error"]),
            "logger": r.choice(["billing.api", "auth.service", "orders.worker"]),
            "timestamp": f"2026-11-{r.randint(1, 28):02d}T10:{r.randint(0, 59):02d}:07.123Z",
            "request_id": f"{r.getrandbits(128):032x}",
            "user_id": f"u-{uid}",
            "http_method": r.choice(["GET", "POST", "PUT"]),
            "http_path": f"/api/v1/orders/{r.randint(1, 99999)}",
            "status_code": r.choice([200, 201, 400, 404, 500]),
            "duration_ms": round(r.random() * 300, 3),
        }
        if r.random() < 0.5:
            ev["tenant"] = r.choice(["acme", "globex", "initech"])
        if r.random() < 0.5:
            ev["region"] = r.choice(["eu-west-1", "us-east-1"])
        labeled.event = ev
        labeled.benign += [ev["timestamp"], ev["request_id"], ev["http_path"]]
        return labeled


def generate(n: int, seed: int = SEED) -> list[LabeledEvent]:
    """``n`` labeled events, identical for the same seed."""
    corpus = FreeTextCorpus(seed)
    return [corpus.event() for _ in range(n)]


if __name__ == "__main__":
    for item in generate(5):
        print(json.dumps(item.event, ensure_ascii=False))
        print("  planted:", item.planted)
