"""Bounded maps: a TTL+LRU cache and the packed per-message record memo."""

from langchain_tokencal._cache.memo import RecordMemo
from langchain_tokencal._cache.ttl import CacheStats, TTLCache, check_bounds

__all__ = [
    "CacheStats",
    "RecordMemo",
    "TTLCache",
    "check_bounds",
]
