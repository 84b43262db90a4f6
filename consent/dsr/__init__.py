"""Data subject requests: the desk (``desk``: lifecycle, verification, fulfilment),
the request records and vocabulary (``requests``), and the access and portability
bundle (``export``).

May import: :mod:`consent.ledger`, :mod:`consent.acting`, :mod:`consent.receipts`, the
vault, ``policies`` and ``audit``.
"""
