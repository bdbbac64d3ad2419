"""Bulkhead (slow-query semaphore), circuit breaker, problem+json errors, health."""
