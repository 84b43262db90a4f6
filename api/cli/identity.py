"""``cvault customers duplicates`` and ``cvault customers reindex``: identity resolution
from the shell, as the operator (``system:identity``).

``duplicates`` lists candidate pairs (ids and what they share, never a value), each to
merge with ``mergeCustomers`` or ``cvault customers merge``. ``reindex`` computes the
name + birth date match key of records written before it existed. Plain functions:
:mod:`api.cli` registers them in the ``customers`` group.
"""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli.common import EXIT_USAGE, fail, opened, out

__all__ = ["duplicates", "reindex"]

MAX_PAIRS = 10_000


def duplicates(
    limit: Annotated[
        int, typer.Option("--limit", help=f"At most this many pairs (1..{MAX_PAIRS}).")
    ] = 100,
) -> None:
    """List pairs of customers that may be one person: keep id, duplicate id, reasons."""
    if not 1 <= limit <= MAX_PAIRS:
        raise fail(f"--limit must be between 1 and {MAX_PAIRS}", EXIT_USAGE)
    from vault.authorization.context import AccessContext

    with opened() as vault, vault.unit(AccessContext.system("identity")) as session:
        pairs = vault.customers.duplicates.candidates(session, limit=limit)
    for pair in pairs:
        reasons = ",".join(r.value for r in pair.reasons)
        line = f"{pair.keep_id}  {pair.duplicate_id}  {reasons}"
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    out.print(f"{len(pairs)} candidate pairs", markup=False, highlight=False)


def reindex() -> None:
    """Compute the name + birth date match key of records that have none yet."""
    from vault.authorization.context import AccessContext

    with opened() as vault, vault.unit(AccessContext.system("identity")) as session:
        done = vault.customers.duplicates.reindex(session)
    out.print(f"{done} customers reindexed")
