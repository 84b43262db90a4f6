"""Demo data: customers named in many scripts (Persian, Thai, Chinese, accented Latin)
with a plausible multi-channel history, written through the services.

Owns: ``service`` (``load_demo``: a plan written through the services, idempotently),
``plan`` (``plan_demo``, ``plan_customer``: deterministic generation of customers and
their history), ``cultures`` (per-locale names, phones, addresses, currencies, chat).
Modules import in this order: service -> plan -> cultures.
May import: :mod:`vault.runtime` and every feature below it, the kernel.
"""

from __future__ import annotations

from vault.demo.plan import DEMO_SOURCE, DemoCustomer, plan_customer, plan_demo
from vault.demo.service import CHUNK_CUSTOMERS, DemoSummary, load_demo

__all__ = [
    "CHUNK_CUSTOMERS",
    "DEMO_SOURCE",
    "DemoCustomer",
    "DemoSummary",
    "load_demo",
    "plan_customer",
    "plan_demo",
]
