"""Personal data in free text: e-mail addresses, phone numbers, card numbers, IBANs and IP addresses.

Each kind is a bounded pattern that finds candidates, then a validator where the kind has one (the Luhn check of
a card number, the mod-97 checksum and country length of an IBAN, `ipaddress` for an address), which is what
keeps a 16-digit order number from being masked as a card. The patterns have no nested unbounded repetition, so
matching time grows linearly with the text (a hostile prompt cannot make them backtrack for long). Why these are
hand-written rather than a library's: see the package docstring.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable

from extproc.guardrails.matches import Match, without_overlaps
from switchyard.config.guardrails import PiiKind

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?![\w-])"
)
# 13-19 digits, optionally in groups separated by single spaces or dashes
_CARD = re.compile(r"(?<![\d+-])\d(?:[ -]?\d){12,18}(?![\d])")
# First digits of the card networks (Visa 4, Mastercard 2 and 5, Amex/Diners/JCB 3, Discover/UnionPay/Maestro 6)
_CARD_NETWORK_DIGITS = frozenset("23456")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Za-z0-9])")
_IPV4 = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\.?\d)"
)
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
# International: +CC, then digit groups (up to 8 digits each: `+49 151 12345678`) after one space, dot or dash, or
# all digits together. National: an optional area code in parentheses, then groups of up to 5 digits. Separators
# are required between groups, so a digit run has one reading and a failed match gives up at once. The digit
# count is checked after (national numbers with their area code: 10-11; E.164: at most 15).
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}(?:[ .-]?\(\d{1,5}\))?(?:[ .-]\d{1,8}){1,6}|\+\d{7,15}"
    r"|(?:\(\d{2,5}\)[ .-]?)?\d{1,5}(?:[ .-]\d{1,5}){1,5})(?!\w)"
)
_DATE_LIKE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")
_VERSION_LIKE = re.compile(r"\d+\.\d+\.\d+")

# IBAN length per country (ISO 13616 registry).
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "BY": 28,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19,
    "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip


def luhn_valid(digits: str) -> bool:
    """The check digit every payment card number carries: a random 16-digit number passes one time in ten."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """ISO 13616: the country's length, then the four first characters moved to the end, letters as 10..35,
    read as a number whose remainder by 97 is 1."""
    iban = candidate.replace(" ", "").upper()
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _emails(text: str) -> list[Match]:
    return [Match(m.start(), m.end(), "EMAIL") for m in _EMAIL.finditer(text)]


def _cards(text: str) -> list[Match]:
    found = []
    for m in _CARD.finditer(text):
        digits = re.sub(r"[ -]", "", m.group())
        if digits[0] in _CARD_NETWORK_DIGITS and _one_separator_style(m.group()) and luhn_valid(digits):
            found.append(Match(m.start(), m.end(), "CARD"))
    return found


def _one_separator_style(candidate: str) -> bool:
    """`4111 1111 1111 1111` or `4111-1111-...`, not a list of numbers that happens to add up."""
    return not (" " in candidate and "-" in candidate)


def _ibans(text: str) -> list[Match]:
    return [Match(m.start(), m.end(), "IBAN") for m in _IBAN.finditer(text) if iban_valid(m.group())]


def _ip_addresses(text: str) -> list[Match]:
    found = [Match(m.start(), m.end(), "IP_ADDRESS") for m in _IPV4.finditer(text)]
    for m in _IPV6.finditer(text):
        candidate = m.group()
        if sum(c.isalnum() for c in candidate) < 2:
            continue  # `::` alone, or `a:b:` in prose
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        found.append(Match(m.start(), m.end(), "IP_ADDRESS"))
    return found


def _phones(text: str) -> list[Match]:
    found = []
    for m in _PHONE.finditer(text):
        candidate = m.group()
        digits = sum(c.isdigit() for c in candidate)
        international = candidate.startswith("+")
        if not (8 <= digits <= 15 if international else 10 <= digits <= 11):
            continue  # national numbers with their area code have 10 or 11 digits; E.164 at most 15
        if _DATE_LIKE.fullmatch(candidate) or _IPV4.fullmatch(candidate):
            continue
        if _VERSION_LIKE.fullmatch(candidate) and not international:
            continue
        found.append(Match(m.start(), m.end(), "PHONE"))
    return found


# In the order overlapping matches of equal length are preferred: a card or an address before a phone number.
_FINDERS: dict[PiiKind, Callable[[str], list[Match]]] = {
    PiiKind.EMAIL: _emails,
    PiiKind.CARD: _cards,
    PiiKind.IBAN: _ibans,
    PiiKind.IP_ADDRESS: _ip_addresses,
    PiiKind.PHONE: _phones,
}


class PiiDetector:
    """The kinds a `pii` check asked for, without overlaps: the match starting first wins (then the longer, then
    the kind found first), so the digits of an IBAN or a card number are not also a phone number."""

    def __init__(self, kinds: tuple[PiiKind, ...] = tuple(PiiKind)) -> None:
        self._finders = [finder for kind, finder in _FINDERS.items() if kind in kinds]  # in _FINDERS' order

    def find(self, text: str) -> list[Match]:
        found: list[Match] = []
        for finder in self._finders:
            found.extend(finder(text))
        return without_overlaps(found)
