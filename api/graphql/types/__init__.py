"""The Strawberry types of the schema and their mapping from domain results.

They wrap what the vault services return and never expose ORM rows. The type modules
import only each other (one way), :mod:`api.graphql.context` and
:mod:`api.graphql.timelines`; the feature modules (customers, audit, policy, privacy,
requests, segments) import them and :mod:`api.graphql.schema` assembles the roots.
"""
