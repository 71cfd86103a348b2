"""Keystone's WSGI application, as gunicorn should import it.

Keystone parses ``sys.argv`` with oslo.config when it builds its app, and
gunicorn's own arguments would be rejected there (the master keeps
restarting workers that die on them); so the arguments are dropped first.
Keystone reads its config from ``OS_KEYSTONE_CONFIG_FILES``.
"""

import sys

sys.argv = sys.argv[:1]

from keystone.wsgi.api import application  # noqa: E402

__all__ = ["application"]
