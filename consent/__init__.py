"""Consent ledger, purposes and data subject requests (the consent issue)."""
