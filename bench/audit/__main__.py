"""``python -m bench.audit``: see :mod:`bench.audit.cli`."""

from __future__ import annotations

from bench.audit.cli import main

main()
