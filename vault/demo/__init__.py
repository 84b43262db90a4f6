"""Demo data: customers named in many scripts (Persian, Thai, Chinese, accented Latin)
with a plausible multi-channel history, written through the services.

Owns: ``service`` (``plan_demo``, ``load_demo``).
May import: :mod:`vault.runtime` and every feature below it, the kernel.
"""
