"""The vault: customers, interactions, storage, crypto and configuration.

Public services live in :mod:`vault.customers` and :mod:`vault.interactions`;
crypto lives in :mod:`vault.crypto` only.
"""
