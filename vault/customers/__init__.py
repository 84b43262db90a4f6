"""Customers: profiles with PII fields encrypted one by one, lookups by blind index,
updates, merges, and the views each caller may see (clear, masked or hidden).

Owns: ``service`` (``CustomerService``: authorizes, gates, audits and logs each
operation), ``models`` (the values exchanged: ``CustomerInput``, ``CustomerPatch`` and
``UNSET``, ``CustomerFilter``, ``ExternalId``, ``Customer``, ``MergeResult``),
``validation`` (the input rules and what a write touches), ``queries`` (reading customer
rows), ``views`` (the caller's view of a row: decrypted, masked or hidden), ``merge``
(folding a duplicate into the record kept), ``addresses`` (postal addresses in parts),
``normalize`` (email and phone normal forms for blind indexes), ``custom_attributes``
(declared attributes checked, PII ones sealed per attribute, the caller's view of them),
``attribute_upkeep`` (stored names the declarations do not cover; sealing old clear PII),
``identity`` (is this person on file already: contacts and external ids, batched),
``duplicates`` (candidate pairs to merge; the name + birth date match key backfill),
``lookups`` (a lookup that must name one customer, or answer AMBIGUOUS).
The public API is re-exported here: ``from vault.customers import CustomerService``.
May import: :mod:`vault.privacy` (the processing gate), :mod:`vault.authorization`,
:mod:`vault.audit_trail`, the kernel, ``policies`` and ``audit``. Never
:mod:`vault.interactions`, :mod:`vault.segments` or anything above.
"""

from vault.customers.duplicates import CandidatePair, DuplicateReason
from vault.customers.lookups import only_one
from vault.customers.models import (
    UNSET,
    Customer,
    CustomerFilter,
    CustomerInput,
    CustomerPatch,
    ExternalId,
    MergeResult,
)
from vault.customers.service import CustomerService

__all__ = [
    "UNSET",
    "CandidatePair",
    "Customer",
    "CustomerFilter",
    "CustomerInput",
    "CustomerPatch",
    "CustomerService",
    "DuplicateReason",
    "ExternalId",
    "MergeResult",
    "only_one",
]
