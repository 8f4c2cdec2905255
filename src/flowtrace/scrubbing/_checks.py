"""Checksum and structure validators used by the detectors (pure functions)."""

from __future__ import annotations

import ipaddress

__all__ = [
    "card_brand",
    "iban_valid",
    "ipv4_valid",
    "ipv6_valid",
    "luhn_valid",
    "ssn_valid",
]


# Luhn doubles every second digit from the right: 0-9 become 0,2,4,6,8,1,3,5,7,9.
_DOUBLED = bytes.maketrans(b"0123456789", b"0246813579")


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod-10) check over a string of ASCII digits."""
    # Sums of byte values (C loops, no per-digit Python): subtract ord("0") per digit.
    raw = digits.encode("ascii")
    total = sum(raw[-1::-2]) + sum(raw[-2::-2].translate(_DOUBLED)) - 48 * len(raw)
    return total % 10 == 0


def card_brand(digits: str) -> str | None:
    """The card scheme whose IIN range and length fit ``digits``, else ``None``."""
    n = len(digits)
    p2 = int(digits[:2])
    p3 = int(digits[:3])
    p4 = int(digits[:4])
    p6 = int(digits[:6])
    if digits[0] == "4" and n in (13, 16, 19):
        return "visa"
    if (51 <= p2 <= 55 or 222100 <= p6 <= 272099) and n == 16:
        return "mastercard"
    if p2 in (34, 37) and n == 15:
        return "amex"
    if (p4 == 6011 or p2 == 65 or 644 <= p3 <= 649 or 622126 <= p6 <= 622925) and 16 <= n <= 19:
        return "discover"
    if (p2 == 35 and 16 <= n <= 19) or (p4 in (2131, 1800) and n == 15):
        return "jcb"
    if (300 <= p3 <= 305 or p2 in (36, 38, 39) or p4 == 3095) and 14 <= n <= 19:
        return "diners"
    if p2 == 62 and 16 <= n <= 19:
        return "unionpay"
    if (
        p4 in (5018, 5020, 5038, 5893, 6304, 6759, 6761, 6762, 6763) or p2 in (50, 56, 57, 58)
    ) and 12 <= n <= 19:
        return "maestro"
    if p4 in (6390, 604) and 12 <= n <= 19:
        return "maestro"
    return None


_IBAN_LENGTHS = {
    "AD": 24,
    "AE": 23,
    "AL": 28,
    "AT": 20,
    "AZ": 28,
    "BA": 20,
    "BE": 16,
    "BG": 22,
    "BH": 22,
    "BR": 29,
    "BY": 28,
    "CH": 21,
    "CR": 22,
    "CY": 28,
    "CZ": 24,
    "DE": 22,
    "DK": 18,
    "DO": 28,
    "EE": 20,
    "EG": 29,
    "ES": 24,
    "FI": 18,
    "FO": 18,
    "FR": 27,
    "GB": 22,
    "GE": 22,
    "GI": 23,
    "GL": 18,
    "GR": 27,
    "GT": 28,
    "HR": 21,
    "HU": 28,
    "IE": 22,
    "IL": 23,
    "IQ": 23,
    "IS": 26,
    "IT": 27,
    "JO": 30,
    "KW": 30,
    "KZ": 20,
    "LB": 28,
    "LC": 32,
    "LI": 21,
    "LT": 20,
    "LU": 20,
    "LV": 21,
    "MC": 27,
    "MD": 24,
    "ME": 22,
    "MK": 19,
    "MR": 27,
    "MT": 31,
    "MU": 30,
    "NL": 18,
    "NO": 15,
    "PK": 24,
    "PL": 28,
    "PS": 29,
    "PT": 25,
    "QA": 29,
    "RO": 24,
    "RS": 22,
    "SA": 24,
    "SC": 31,
    "SE": 24,
    "SI": 19,
    "SK": 24,
    "SM": 27,
    "ST": 25,
    "SV": 28,
    "TL": 23,
    "TN": 24,
    "TR": 26,
    "UA": 29,
    "VA": 22,
    "VG": 24,
    "XK": 20,
}


# ISO 13616 / ISO 7064 mod 97-10: letters count as two digits, A=10 ... Z=35.
_IBAN_NUMERIC = {ord(c): str(i) for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 10)}


def iban_valid(compact: str) -> bool:
    """ISO 13616: known country length and mod-97 == 1 (``compact``: no spaces, upper)."""
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    numeric = (compact[4:] + compact[:4]).translate(_IBAN_NUMERIC)
    # Anything but 0-9 / A-Z (lower case, other scripts' digits) is left over: invalid.
    if not (numeric.isascii() and numeric.isdigit()):
        return False
    return int(numeric) % 97 == 1


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """US SSN rules: area not 000, 666 or 900-999; group not 00; serial not 0000."""
    a = int(area)
    return a != 0 and a != 666 and a < 900 and group != "00" and serial != "0000"


def ipv4_valid(text: str) -> bool:
    """Four dotted octets 0-255 without leading zeros."""
    parts = text.split(".")
    if len(parts) != 4:
        return False
    return all(p and not (len(p) > 1 and p[0] == "0") and int(p) <= 255 for p in parts)


def ipv6_valid(text: str) -> bool:
    """A syntactically valid IPv6 address (at least two groups, not just ``::``)."""
    if text.count(":") < 2:
        return False
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True
