"""Reliability with real processes: crashes, a database outage, disk trouble."""
