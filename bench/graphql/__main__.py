"""``python -m bench.graphql``: see :mod:`bench.graphql.cli`."""

from __future__ import annotations

from bench.graphql.cli import main

main()
