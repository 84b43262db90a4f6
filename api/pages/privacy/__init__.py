"""The customers' privacy page, ``/privacy``: sign in with a one-time code, see the data
held, change consents, see who accessed the data, file and follow requests.

``base`` (the shared services, the signed-in session, failures as pages), ``signin``
(codes and sessions), ``account`` (data, consents, access history), ``requests`` (data
subject requests and downloads). :func:`privacy_routes` lists the routes.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from api.pages.privacy.account import AccountHandlers
from api.pages.privacy.base import PrivacyBase
from api.pages.privacy.requests import RequestHandlers
from api.pages.privacy.signin import SignInHandlers

__all__ = ["PrivacyBase", "privacy_routes"]


def privacy_routes(base: PrivacyBase) -> list[BaseRoute]:
    sign_in = SignInHandlers(base)
    account = AccountHandlers(base)
    requests = RequestHandlers(base)
    return [
        Route("/privacy", sign_in.home, methods=["GET"]),
        Route("/privacy/sign-in", sign_in.request_code, methods=["POST"]),
        Route("/privacy/code", sign_in.code_form, methods=["GET"]),
        Route("/privacy/code", sign_in.check_code, methods=["POST"]),
        Route("/privacy/sign-out", sign_in.sign_out, methods=["POST"]),
        Route("/privacy/data", account.data, methods=["GET"]),
        Route("/privacy/consents", account.consents, methods=["GET"]),
        Route("/privacy/consents", account.change_consent, methods=["POST"]),
        Route("/privacy/consents/{event_id}/receipt", account.receipt, methods=["GET"]),
        Route("/privacy/access", account.access, methods=["GET"]),
        Route("/privacy/requests", requests.list, methods=["GET"]),
        Route("/privacy/requests", requests.file, methods=["POST"]),
        Route("/privacy/erasure", requests.erasure_form, methods=["GET"]),
        Route("/privacy/erasure", requests.erase, methods=["POST"]),
        Route("/privacy/requests/{request_id}/bundle", requests.bundle, methods=["GET"]),
    ]
