"""The audit trail's storage side; its pure side (entries, Merkle tree, checkpoints,
export format, offline verifier) is the top-level ``audit`` package.

Owns: ``log`` (``AuditLog``: the unit-of-work buffer, append, sequencer, signed
checkpoints), ``writer`` (the group-committed appends of the worker threads),
``loop_writer`` (their group commit on the event loop, for the hot reads), ``export``
(streaming, filtered and proven exports), ``queries`` (searches, proofs and a data
subject's access history).
May import: :mod:`vault.authorization`, the kernel, ``policies`` and ``audit``.
"""
