"""Bounded maps: a TTL+LRU cache and the packed per-message record memo."""
