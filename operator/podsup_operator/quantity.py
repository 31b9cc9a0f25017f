"""Kubernetes resource quantities (resource.Quantity) as exact decimals.

Shared by the reconcile (the API server returns quantities in canonical
form: "0.5" → "500m", so a drift check compares values) and the offline
validator (the CRD's CEL rules use Kubernetes' quantity library, which
cel-python lacks: validation.py binds these functions in its place).
"""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:[eE]([+-]?[0-9]+)|"
                       r"(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei))?$")
_SUFFIX = {None: Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("0.001"),
           "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12),
           "P": Decimal(10**15), "E": Decimal(10**18), "Ki": Decimal(2**10), "Mi": Decimal(2**20),
           "Gi": Decimal(2**30), "Ti": Decimal(2**40), "Pi": Decimal(2**50), "Ei": Decimal(2**60)}


def parse_quantity(value: Any) -> Decimal | None:
    """The numeric value of a Kubernetes quantity (a string or an integer),
    or None if it is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    match = _QUANTITY.match(str(value).strip())
    if not match:
        return None
    number, exponent, suffix = match.groups()
    return Decimal(number) * (Decimal(10) ** int(exponent or 0)) * _SUFFIX[suffix]
