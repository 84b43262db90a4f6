"""Segments: a typed rule language compiled to SQL, per-customer metrics, materialised
membership with enter/leave events in an outbox."""
