"""Data subject requests (GDPR Art. 12, 15-21).

* ``desk``: :class:`~consent.dsr.desk.DsrDesk`, the request lifecycle (file with a
  one-time token, verify, list and show, extend, reject, process), lifting a
  restriction and legal holds;
* ``fulfilment``: carrying out a verified request by type (access and portability
  bundle, erasure with its signed receipt, rectification, restriction, objection);
* ``details``: what a request asks for, checked at filing, sealed and opened again;
* ``history``: each step as a ``dsr_events`` row and an audit entry, and requests read
  back as views with their history;
* ``requests``: the records and vocabulary (inputs, views, errors, the due-date rule);
* ``export``: the access and portability bundle.

Modules import downwards in that order (``desk`` over ``fulfilment`` over ``details``,
``history`` and ``export``, all over ``requests``). May import: :mod:`consent.ledger`,
:mod:`consent.acting`, :mod:`consent.receipts`, the vault, ``policies`` and ``audit``.
"""
