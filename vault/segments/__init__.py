"""Segments: a typed rule language compiled to SQL, per-customer metrics, materialised
membership with enter/leave events in an outbox, and the webhooks that deliver them.

Owns: ``rules`` (the rule tree), ``parse`` (its JSON form), ``compile`` (with
``sequences``: sequence conditions and time windows in SQL), ``metrics``,
``models``, ``membership``, ``service`` (``SegmentService``), ``webhooks``
(``WebhookService``), ``delivery`` (``WebhookDispatcher``).
May import: :mod:`vault.privacy`, :mod:`vault.authorization`, :mod:`vault.audit_trail`,
the kernel, ``policies`` and ``audit``. Never the internals of :mod:`vault.customers`
or :mod:`vault.interactions` (segments read the tables through their own SQL).
"""
