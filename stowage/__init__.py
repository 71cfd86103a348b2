"""Stowage: a fast, drop-in replacement for the OpenStack Placement API."""
