"""``python -m bench.segments``: see :mod:`bench.segments` and :mod:`bench.segments.cli`."""

from __future__ import annotations

from bench.segments.cli import main

main()
