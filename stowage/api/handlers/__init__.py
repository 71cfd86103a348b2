"""Handlers, one module per resource; each sits beside its serialiser."""
