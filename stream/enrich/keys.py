"""Key transforms: how a profile value (and each key of a data file) becomes a lookup key.

>>> KEY_TRANSFORMS["email_domain"]("Ann@Acme.COM "), KEY_TRANSFORMS["postal_code"](" sw1a 1aa")
('acme.com', 'SW1A1AA')
"""

from __future__ import annotations

from collections.abc import Callable

KeyTransform = Callable[[str], str]


def email_domain(value: str) -> str:
    """The domain of an e-mail address, lower-cased (a bare domain stays itself): ``Ann@Acme.com`` -> ``acme.com``."""
    return value.rpartition("@")[2].strip().lower()


def postal_code(value: str) -> str:
    """A postal code trimmed, upper-cased, without spaces: ``sw1a 1aa`` -> ``SW1A1AA``."""
    return "".join(value.split()).upper()


def lower(value: str) -> str:
    """Trimmed and lower-cased."""
    return value.strip().lower()


def exact(value: str) -> str:
    """Trimmed only."""
    return value.strip()


#: The ``transform:`` names an enricher config may use.
KEY_TRANSFORMS: dict[str, KeyTransform] = {
    "email_domain": email_domain,
    "postal_code": postal_code,
    "lower": lower,
    "exact": exact,
}
