"""Domain operations: what the API does, in Placement's own terms.

Each operation takes a storage connection (a unit of work opened by the
caller) and plain values, enforces Placement's rules and raises exceptions
from ``stowage.errors``. Nothing here knows about HTTP.
"""
