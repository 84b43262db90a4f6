"""The vault: the domain layer every edge (GraphQL, CLI, pages) calls.

One package per feature over a small shared kernel. A feature package's docstring
says what it owns and what it may import; ``lint-imports`` holds the arrows.

Features (highest first; each may import those below it and the kernel):

* :mod:`vault.importing`, :mod:`vault.demo`: bulk loads through the services.
* :mod:`vault.runtime` (``Vault``, the composition root), :mod:`vault.bootstrap` (init).
* :mod:`vault.segments`: rules, SQL compiler, metrics, membership, webhooks.
* :mod:`vault.customers`, :mod:`vault.interactions`: profiles and their history.
* :mod:`vault.privacy`: the processing gate (consent, restriction, objection),
  erasure by crypto-shredding, retention.
* :mod:`vault.audit_trail`: the audit log's storage side (writer, sequencer,
  checkpoints, export, queries, access history).
* :mod:`vault.authorization`: who asks for what (access context), the Casbin
  authorizer and the policy store.

Kernel (imports no feature): :mod:`vault.config`, :mod:`vault.errors`,
:mod:`vault.types`, :mod:`vault.text`, :mod:`vault.money`, :mod:`vault.pagination`
(Relay windows and pages), :mod:`vault.keyset` (ordered lists over SQL, sealed cursors),
:mod:`vault.logs`, :mod:`vault.keys` (per-customer data keys), :mod:`vault.storage`
and :mod:`vault.crypto` (the only code that imports ``cryptography``).
"""
