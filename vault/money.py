"""Amounts as integers in the currency's minor unit (ISO 4217 exponents)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from vault.errors import InvalidInput

__all__ = ["from_minor", "to_minor"]

# Currencies whose minor unit is not 1/100. Everything else uses two decimals.
_EXPONENTS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
}  # fmt: skip
_MAX_MINOR = 10**15


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency, 2)


def check_currency(value: str, *, field: str = "currency") -> str:
    code = value.strip().upper()
    if len(code) != 3 or not code.isascii() or not code.isalpha():
        raise InvalidInput(field, "must be a three-letter ISO 4217 code")
    return code


def to_minor(amount: Decimal | int | str, currency: str, *, field: str = "amount") -> int:
    """``Decimal("19.99"), "EUR"`` -> ``1999``; refuses more decimals than the currency has."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise InvalidInput(field, "must be a decimal number") from None
    if not value.is_finite():
        raise InvalidInput(field, "must be a finite number")
    scaled = value.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise InvalidInput(field, "has more decimals than the currency's minor unit allows")
    minor = int(scaled)
    if abs(minor) >= _MAX_MINOR:
        raise InvalidInput(field, "is out of range")
    return minor


def from_minor(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-exponent(currency))
