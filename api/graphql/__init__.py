"""The GraphQL gateway: schema (types, resolvers), HTTP endpoint, hardening.

Resolvers are thin: they read the request's context, call one vault service with
the unit of work bound to the caller, and map the result to Strawberry types.
No SQL, crypto or Casbin here.
"""
