"""Trusted GraphQL documents: the persisted-document manifests clients' build tools
write, and the documents the gateway accepts by id (or, under ``require``, at all).

Owns: ``manifest`` (Relay's, the client preset's and Apollo's manifests read into
checked entries; document ids), ``store`` (``TrustedDocumentStore``: register a
manifest whole or not at all, revoke, list, show; the snapshot a server caches). The
``trusted_documents`` and ``trusted_document_events`` tables are its own (append-only).
It does not parse GraphQL: the edge passes a checker that validates a document against
the schema.
May import: :mod:`vault.audit_trail`, :mod:`vault.authorization`, the kernel,
``policies`` and ``audit``. Nothing above.
"""

from vault.documents.manifest import (
    APOLLO_FORMAT,
    Manifest,
    ManifestEntry,
    ManifestError,
    document_sha256,
    id_matches,
    parse_document_id,
    parse_manifest,
)
from vault.documents.store import (
    DocumentChecker,
    DocumentFacts,
    DocumentNotTrusted,
    InvalidDocument,
    Registration,
    TrustedDocument,
    TrustedDocumentStore,
    TrustedSnapshot,
)

__all__ = [
    "APOLLO_FORMAT",
    "DocumentChecker",
    "DocumentFacts",
    "DocumentNotTrusted",
    "InvalidDocument",
    "Manifest",
    "ManifestEntry",
    "ManifestError",
    "Registration",
    "TrustedDocument",
    "TrustedDocumentStore",
    "TrustedSnapshot",
    "document_sha256",
    "id_matches",
    "parse_document_id",
    "parse_manifest",
]
