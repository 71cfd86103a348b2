"""Stowage behind a real Keystone: tokens, default policy, clients, refused configurations."""
