"""Shared core: knows no domain (db, resilience, cache, batch, jobs)."""
