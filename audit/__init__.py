"""Append-only, tamper-evident audit log (the audit trail issue). Imports nothing else."""
