"""What both servers are asked: the profile query in each one's schema, and one POST
of it (readiness probes and the cross-check; the load itself comes from wrk)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

# The UUIDs under the name ``id``, as PostGraphile's answer has them (our ``id`` is the
# Relay global id since issue 16; bench/relay.py measures what it costs).
OUR_QUERY = (
    "query($id: ID!) { customer(id: $id) { id: customerId email phone firstName lastName "
    "birthDate address interactions(first: 10) { edges { node { id: interactionId channel "
    "type occurredAt amount } } } } }"
)
PEER_QUERY = (
    "query($id: UUID!) { pgCustomerById(id: $id) { id email phone firstName lastName "
    "birthDate address pgInteractionsByCustomerId(first: 10, orderBy: OCCURRED_AT_DESC) { "
    "edges { node { id channel type occurredAt amount } } } } }"
)


def post(url: str, query: str, variables: dict[str, Any], headers: dict[str, str]) -> Any:  # noqa: ANN401 - JSON
    body = json.dumps({"query": query, "variables": variables}).encode()
    request = urllib.request.Request(  # noqa: S310 - loopback only
        url, data=body, headers={"Content-Type": "application/json", **headers}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback only
        return json.loads(response.read())
