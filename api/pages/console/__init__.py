"""The compliance console, ``/console``, for staff: sign-in by a one-time link (``cvault
console link``), the data subject requests queue, the audit trail (search, export,
verification of an export, checkpoints), consent proof and the policy viewer;
sign-in through OpenID Connect when ``CVAULT_OIDC_ISSUER`` is set.

``base`` (the staff session, failures as pages), ``signin`` (links and sign-out),
``oidc`` and ``settings`` (OpenID Connect), ``requests`` (the queue and the desk's
actions), ``audit`` (the trail), ``trail_csv`` (the trail as CSV rows), ``proof``
(consent proof, the policy viewer).
:func:`console_routes` lists the routes.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from api.pages.console.audit import AuditHandlers
from api.pages.console.base import CONSOLE_COOKIE, ConsoleBase
from api.pages.console.oidc import OidcHandlers
from api.pages.console.proof import ProofHandlers
from api.pages.console.requests import RequestHandlers
from api.pages.console.settings import OidcConfig
from api.pages.console.signin import SignInHandlers

__all__ = ["CONSOLE_COOKIE", "ConsoleBase", "OidcConfig", "console_routes"]


def console_routes(base: ConsoleBase) -> list[BaseRoute]:
    sign_in = SignInHandlers(base)
    requests = RequestHandlers(base)
    audit = AuditHandlers(base)
    proof = ProofHandlers(base)
    oidc = OidcHandlers(base)
    oidc.configure(base.oidc)
    return [
        Route("/console", sign_in.home, methods=["GET"]),
        Route("/console/link", sign_in.redeem, methods=["GET"]),
        Route("/console/oidc/login", oidc.login, methods=["GET"]),
        Route("/console/oidc/callback", oidc.callback, name="console_oidc_callback"),
        Route("/console/sign-out", sign_in.sign_out, methods=["POST"]),
        Route("/console/requests", requests.queue, methods=["GET"]),
        Route("/console/requests.csv", requests.export_csv, methods=["GET"]),
        Route("/console/requests/{request_id}/{action}", requests.act, methods=["POST"]),
        Route("/console/audit", audit.search, methods=["GET"]),
        Route("/console/audit/export.jsonl", audit.export, methods=["GET"]),
        Route("/console/audit/export.csv", audit.export_csv, methods=["GET"]),
        Route("/console/audit/verify", audit.verify_form, methods=["GET"]),
        Route("/console/audit/verify", audit.verify, methods=["POST"]),
        Route("/console/audit/checkpoints", audit.checkpoints, methods=["GET"]),
        Route("/console/consent", proof.consent, methods=["GET"]),
        Route("/console/consent/{event_id}/receipt", proof.receipt, methods=["GET"]),
        Route("/console/policy", proof.policy, methods=["GET"]),
    ]
