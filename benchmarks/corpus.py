"""Labeled corpus of structured log events for the scrubbing benchmark (Faker, fixed seed).

Each event is a nested dict like a structlog/OTel event. Sensitive values are planted at
random positions — under telling keys (``email``), under neutral keys (``value``), inside
free-text messages and inside lists — and recorded as ``(category, text)`` labels. Benign
look-alikes are recorded too: order ids, UUIDs, ISO timestamps, amounts, SHA hashes, version
strings, Luhn-failing 16-digit numbers, and benign keys containing words like "session",
"auth_method" and "tokens_used".

Benchmark-only: needs ``faker`` (``pip install 'flowtrace[bench]'``).
"""

from __future__ import annotations

import hashlib
import random
import string
from dataclasses import dataclass, field
from typing import Any

from faker import Faker

SEED = 20261127

CATEGORIES = ("pii", "pci", "financial", "credential", "network")


@dataclass
class LabeledEvent:
    event: dict[str, Any]
    planted: list[tuple[str, str, str]] = field(default_factory=list)
    """(category, kind, text that must not survive)."""
    benign: list[str] = field(default_factory=list)
    """Values that must survive unchanged."""


def _luhn_fail(rnd: random.Random) -> str:
    """A 16-digit number starting like a Visa whose Luhn check fails."""
    while True:
        digits = "4" + "".join(rnd.choice(string.digits) for _ in range(15))
        total = 0
        for i, ch in enumerate(reversed(digits)):
            d = int(ch)
            if i % 2:
                d = d * 2 - 9 if d * 2 > 9 else d * 2
            total += d
        if total % 10:
            return digits


def _alnum(rnd: random.Random, n: int) -> str:
    pool = string.ascii_letters + string.digits
    return "".join(rnd.choice(pool) for _ in range(n))


class Corpus:
    """Generates labeled events deterministically."""

    def __init__(self, seed: int = SEED) -> None:
        self.fake = Faker(["en_US", "en_GB", "de_DE"])
        Faker.seed(seed)
        self.rnd = random.Random(seed)

    # -- sensitive values -----------------------------------------------------------------

    def sensitive(self) -> tuple[str, str, Any]:
        """(category, kind, value) of one random sensitive value."""
        f, r = self.fake, self.rnd
        kind = r.choice(
            [
                "email",
                "phone",
                "ssn",
                "card",
                "card_spaced",
                "card_int",
                "iban",
                "password",
                "jwt",
                "aws_key_id",
                "aws_secret",
                "github",
                "slack",
                "stripe",
                "bearer",
                "dsn",
                "private_key",
                "ipv4",
                "ipv6",
            ]
        )
        if kind == "email":
            return "pii", kind, f.email()
        if kind == "phone":
            return "pii", kind, f[r.choice(["en_US", "en_GB", "de_DE"])].phone_number()
        if kind == "ssn":
            return "pii", kind, f["en_US"].ssn()
        if kind == "card":
            return "pci", kind, f.credit_card_number()
        if kind == "card_spaced":
            n = f.credit_card_number(card_type=r.choice(["visa16", "mastercard", "discover"]))
            return "pci", kind, " ".join(n[i : i + 4] for i in range(0, len(n), 4))
        if kind == "card_int":
            return "pci", kind, int(f.credit_card_number(card_type="visa16"))
        if kind == "iban":
            iban = f[r.choice(["en_GB", "de_DE"])].iban()
            if r.random() < 0.5:
                iban = " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
            return "financial", kind, iban
        if kind == "password":
            return "credential", kind, f.password(length=r.randint(10, 16))
        if kind == "jwt":
            payload = _alnum(r, 40)
            return (
                "credential",
                kind,
                f"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ{payload}.{_alnum(r, 43)}",
            )
        if kind == "aws_key_id":
            return (
                "credential",
                kind,
                "AKIA" + "".join(r.choice(string.ascii_uppercase + "234567") for _ in range(16)),
            )
        if kind == "aws_secret":
            base = _alnum(r, 36) + r.choice(string.digits) + r.choice("ABC") + "a/"
            return "credential", kind, "".join(r.sample(base, len(base)))
        if kind == "github":
            return "credential", kind, "ghp_" + _alnum(r, 36)
        if kind == "slack":
            return "credential", kind, f"xoxb-{r.randint(10**10, 10**11)}-{_alnum(r, 24)}"
        if kind == "stripe":
            return "credential", kind, "sk_live_" + _alnum(r, 24)
        if kind == "bearer":
            return "credential", kind, _alnum(r, 32)
        if kind == "dsn":
            return "credential", kind, f.password(length=12, special_chars=False)
        if kind == "private_key":
            return "credential", kind, "\n".join(_alnum(r, 64) for _ in range(3))
        if kind == "ipv4":
            return "network", kind, f.ipv4_public()
        return "network", kind, f.ipv6()

    # -- benign look-alikes -----------------------------------------------------------------

    def benign(self) -> dict[str, Any]:
        f, r = self.fake, self.rnd
        return {
            "order_id": f"ORD-{r.randint(2019, 2026)}-{r.randint(0, 999999):06d}",
            "request_id": str(f.uuid4()),
            "timestamp": f.iso8601(),
            "amount": f"{r.randint(1, 99999)}.{r.randint(0, 99):02d}",
            "checksum": hashlib.sha256(f.binary(16)).hexdigest(),
            "commit": hashlib.sha1(f.binary(8)).hexdigest(),
            "version": f"{r.randint(0, 9)}.{r.randint(0, 30)}.{r.randint(0, 20)}",
            "reference": _luhn_fail(r),
            "session": f"sess_{r.randint(1, 10**6)}",
            "auth_method": r.choice(["sso", "password", "oauth", "magic_link"]),
            "tokens_used": r.randint(1, 4096),
            "status": r.choice(["ok", "pending", "refunded"]),
            "duration_ms": round(r.random() * 300, 3),
        }

    # -- events ---------------------------------------------------------------------------

    def event(self) -> LabeledEvent:
        f, r = self.fake, self.rnd
        benign = self.benign()
        ev: dict[str, Any] = {
            "event": f.sentence(nb_words=8),
            "level": r.choice(["info", "warning", "error"]),
            "http": {
                "method": r.choice(["GET", "POST", "PUT"]),
                "path": f"/api/v1/orders/{r.randint(1, 99999)}",
                "status": r.choice([200, 201, 400, 404, 500]),
            },
            "user": {"id": r.randint(1, 10**7), "plan": r.choice(["free", "pro"])},
            **{k: benign[k] for k in ("order_id", "request_id", "timestamp", "amount")},
            "build": {"version": benign["version"], "commit": benign["commit"]},
            "meta": {
                k: benign[k]
                for k in (
                    "checksum",
                    "reference",
                    "session",
                    "auth_method",
                    "tokens_used",
                    "status",
                    "duration_ms",
                )
            },
        }
        labeled = LabeledEvent(ev)
        labeled.benign = [str(v) for v in benign.values() if isinstance(v, str)]
        for _ in range(r.randint(1, 3)):
            self._plant(labeled, *self.sensitive())
        return labeled

    def _plant(self, labeled: LabeledEvent, category: str, kind: str, value: Any) -> None:
        r, ev = self.rnd, labeled.event
        text = str(value)
        if kind == "password":
            ev.setdefault("login", {})["password"] = value
        elif kind == "bearer":
            if r.random() < 0.5:
                ev.setdefault("headers", {})["Authorization"] = f"Bearer {value}"
            else:
                ev["event"] += f" upstream replied 401 for Bearer {value}"
        elif kind == "dsn":
            ev["db_url"] = f"postgresql://app:{value}@db.internal:5432/orders"
        elif kind == "private_key":
            ev.setdefault("tls", {})["material"] = (
                f"-----BEGIN PRIVATE KEY-----\n{value}\n-----END PRIVATE KEY-----"
            )
            text = value.split("\n")[1]
        else:
            slot = r.choice(["telling", "neutral", "text", "list"])
            if slot == "telling":
                ev.setdefault("customer", {})[kind] = value
            elif slot == "neutral":
                ev.setdefault("payload", {})[f"field_{r.randint(1, 99)}"] = value
            elif slot == "text":
                ev["event"] += f" {r.choice(['contact', 'value', 'ref', 'from'])} {value} noted"
            else:
                ev.setdefault("items", []).append({"note": f"see {value}", "qty": r.randint(1, 5)})
        labeled.planted.append((category, kind, text))


def generate(n: int, seed: int = SEED) -> list[LabeledEvent]:
    """``n`` labeled events, identical for the same seed."""
    corpus = Corpus(seed)
    return [corpus.event() for _ in range(n)]


if __name__ == "__main__":
    import json

    for item in generate(3):
        print(json.dumps(item.event, default=str, indent=2))
        print("planted:", item.planted)
