"""Who asks, for what purpose, and whether they may.

Owns: ``context`` (``AccessContext``: actor, purpose, request id; bound to every unit
of work), ``authorizer`` (``Authorizer``: Casbin decisions per role, resource, action
and purpose; field resolutions), ``policy_store`` (policy versions in the database).
May import: the kernel, ``policies`` and ``audit``. Nothing else of the vault.
"""
