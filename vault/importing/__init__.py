"""Importing: CSV and JSON Lines files of customers or interactions, checked row by row
(errors name the line and the column, never the value), written through the services.

Owns: ``service`` (``import_customers``, ``import_interactions``).
May import: :mod:`vault.runtime` and every feature below it, the kernel.
"""
