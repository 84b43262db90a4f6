"""Casbin model, default policy and a small enforcer wrapper (the GraphQL gateway issue).

A bottom layer: it imports nothing from vault, consent, audit or api. The
vocabulary it decides on (roles, purposes, resources) is defined here in
:mod:`policies.purposes`; the masks for ``masked`` fields in :mod:`policies.masking`, and the
formats a policy may pick per role, field and purpose (``p3`` lines) in
:mod:`policies.mask_formats` and :mod:`policies.format_lines`.
"""

from policies.enforcer import (
    AccessDenied,
    Explanation,
    PolicyEnforcer,
    PolicyError,
    PolicyFile,
    PolicyLines,
    PurposeNotAllowed,
    default_model_text,
    default_policy_lines,
)
from policies.purposes import Action, Operation, Purpose, Resolution, Resource, Role

__all__ = [
    "AccessDenied",
    "Action",
    "Explanation",
    "Operation",
    "PolicyEnforcer",
    "PolicyError",
    "PolicyFile",
    "PolicyLines",
    "Purpose",
    "PurposeNotAllowed",
    "Resolution",
    "Resource",
    "Role",
    "default_model_text",
    "default_policy_lines",
]
