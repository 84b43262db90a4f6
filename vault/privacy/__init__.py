"""Privacy machinery inside the domain: what GDPR asks of every read and write.

Owns: ``processing`` (the processing gate: consent-based purposes, restriction,
objection, checked in SQL and for single reads), ``erasure`` (crypto-shredding,
tombstones, purges), ``retention`` and ``retention_policy`` (periods per interaction
type, ``retention_default.toml``).
May import: :mod:`vault.audit_trail`, :mod:`vault.authorization`, the kernel,
``policies`` and ``audit``. Never :mod:`vault.customers`, :mod:`vault.interactions`,
:mod:`vault.segments` or anything above. The consent ledger and the data subject
request desk live one layer up, in :mod:`consent`.
"""
