"""Which unit of work a GraphQL operation runs in: a query whose every root field
tolerates lag runs in :meth:`vault.runtime.Vault.read_unit` (the replica when
``CVAULT_DATABASE_REPLICA_URL`` is set); everything else, mutations and profile reads
among them, in :meth:`~vault.runtime.Vault.unit` on the primary.

Lag-tolerant: segment preview, segments and their members (membership is computed by the
refresh, never current to the second), channel analytics and funnels, the audit log
search. A root fragment or an unknown field counts as not tolerant: the primary."""

from __future__ import annotations

from typing import Final

from graphql import FieldNode, OperationDefinitionNode, OperationType

__all__ = ["LAG_TOLERANT", "tolerates_lag"]

LAG_TOLERANT: Final = frozenset(
    {"previewSegment", "segment", "segments", "channelAnalytics", "funnel", "auditLog"}
)


def tolerates_lag(operation: OperationDefinitionNode) -> bool:
    """Whether ``operation`` is a query reading only lag-tolerant root fields."""
    if operation.operation is not OperationType.QUERY:
        return False
    names = []
    for selection in operation.selection_set.selections:
        if not isinstance(selection, FieldNode):
            return False
        if selection.name.value != "__typename":
            names.append(selection.name.value)
    return bool(names) and all(name in LAG_TOLERANT for name in names)
