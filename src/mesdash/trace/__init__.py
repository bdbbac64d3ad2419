"""Trace: lot resolution, EventFetcher over seven domains, trace jobs."""
