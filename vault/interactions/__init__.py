"""Interactions: idempotent bulk ingest of what customers did on every channel (binary
COPY on PostgreSQL), encrypted payloads, and cursor-paged timelines.

Owns: ``service`` (``InteractionService``), ``models``, ``validation`` (one item's checks),
``copy`` (writing a batch), ``timeline`` (the read statements).
The public API is re-exported here: ``from vault.interactions import InteractionInput``.
May import: :mod:`vault.privacy` (the processing gate), :mod:`vault.authorization`,
:mod:`vault.audit_trail`, the kernel, ``policies`` and ``audit``. Never
:mod:`vault.customers`, :mod:`vault.segments` or anything above.
"""

from vault.interactions.models import IngestResult, Interaction, InteractionInput
from vault.interactions.service import MAX_BATCH, InteractionService

__all__ = ["MAX_BATCH", "IngestResult", "Interaction", "InteractionInput", "InteractionService"]
