"""Casbin model, default policy and a small enforcer wrapper (the GraphQL gateway issue).

A bottom layer: it imports nothing from vault, consent, audit or api. The
vocabulary it decides on (roles, purposes, resources) is defined here in
:mod:`policies.purposes`; the masks for ``masked`` fields in :mod:`policies.masking`.
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
