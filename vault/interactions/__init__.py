"""Interactions: idempotent bulk ingest of what customers did on every channel (binary
COPY on PostgreSQL), encrypted payloads, and cursor-paged timelines.

Owns: ``service`` (``InteractionService``), ``models``, ``validation`` (one item's checks),
``copy`` (writing a batch), ``timeline`` (the read statements).
May import: :mod:`vault.privacy` (the processing gate), :mod:`vault.authorization`,
:mod:`vault.audit_trail`, the kernel, ``policies`` and ``audit``. Never
:mod:`vault.customers`, :mod:`vault.segments` or anything above.
"""
