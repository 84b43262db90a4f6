"""Casbin model, default policy and a small enforcer wrapper (the GraphQL gateway issue)."""
