"""Two-level cache: L1 in process, L2 in Redis, single-flight across threads and processes.

``LayeredCache(prefix).get_or_compute(cache_key(...), compute, ttl, cacheable=...)`` is the
usual entry point; ``query_hash`` is the parameter hash the batch engine shares.
"""

from mesdash.core.cache.codec import decode, encode, to_json_native
from mesdash.core.cache.keys import cache_key, canonical_json, query_hash
from mesdash.core.cache.l1 import L1Cache, get_l1, reset_l1
from mesdash.core.cache.l2 import L2, reset_l2_backoff
from mesdash.core.cache.layered import COUNTERS, LayeredCache, all_stats
from mesdash.core.cache.singleflight import SingleFlight

__all__ = [
    "COUNTERS",
    "L2",
    "L1Cache",
    "LayeredCache",
    "SingleFlight",
    "all_stats",
    "cache_key",
    "canonical_json",
    "decode",
    "encode",
    "get_l1",
    "query_hash",
    "reset_l1",
    "reset_l2_backoff",
    "to_json_native",
]
