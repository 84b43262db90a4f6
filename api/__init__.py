"""Edges: the Starlette app, its middleware and pages, and the ``cvault`` CLI.

Edges call the services in :mod:`vault` (and later :mod:`consent`); they hold
no SQL, no crypto and no policy logic of their own.
"""
