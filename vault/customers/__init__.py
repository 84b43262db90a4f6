"""Customers: profiles with PII fields encrypted one by one, lookups by blind index,
updates, merges, and the views each caller may see (clear, masked or hidden).

Owns: ``service`` (``CustomerService``), ``addresses`` (postal addresses in parts),
``normalize`` (email and phone normal forms for blind indexes).
May import: :mod:`vault.privacy` (the processing gate), :mod:`vault.authorization`,
:mod:`vault.audit_trail`, the kernel, ``policies`` and ``audit``. Never
:mod:`vault.interactions`, :mod:`vault.segments` or anything above.
"""
