"""Authentication: noauth2 tokens or Keystone, then a request context.

noauth2 follows upstream's token semantics: ``x-auth-token: admin`` is an
administrator, ``user`` a plain user, ``user:project`` names both; roles may
be given explicitly with ``x-roles``. The root document needs no token.
"""
from __future__ import annotations

from keystonemiddleware import auth_token
from oslo_config import cfg
from oslo_context import context as oslo_context

from stowage import errors


def _is_root(environ: dict) -> bool:
    return environ.get("PATH_INFO", "") in ("/", "")


class NoAuth2:
    """Trust ``x-auth-token`` as ``user[:project]`` (for tests and loopback)."""

    def __init__(self, application) -> None:
        self.application = application

    def __call__(self, environ, start_response):
        if _is_root(environ):
            return self.application(environ, start_response)
        token = environ.get("HTTP_X_AUTH_TOKEN")
        if token is None:
            raise errors.Unauthorized("No x-auth-token header given.")
        user_id, _sep, project_id = token.partition(":")
        project_id = project_id or user_id
        if "HTTP_X_ROLES" in environ:
            roles = environ["HTTP_X_ROLES"]
        else:
            roles = "admin" if user_id == "admin" else ""
        environ["HTTP_X_USER_ID"] = user_id
        if not environ.get("HTTP_OPENSTACK_SYSTEM_SCOPE"):
            environ["HTTP_X_TENANT_ID"] = project_id
        environ["HTTP_X_ROLES"] = roles
        return self.application(environ, start_response)


class Keystone(auth_token.AuthProtocol):
    """keystonemiddleware's auth_token, leaving the root document open."""

    def __init__(self, application, conf: cfg.ConfigOpts) -> None:
        self._unprotected = application
        super().__init__(application, {"oslo_config_config": conf})

    def __call__(self, environ, start_response):
        if _is_root(environ):
            return self._unprotected(environ, start_response)
        return super().__call__(environ, start_response)


def context_from_environ(environ: dict, request_id: str) -> oslo_context.RequestContext:
    """The caller, from the identity headers auth placed in ``environ``.

    Raises ``Unauthorized`` when no user is known (except at the root).
    """
    context = oslo_context.RequestContext.from_environ(environ, request_id=request_id)
    if context.user_id is None and not _is_root(environ):
        raise errors.Unauthorized("No user identity in the request.")
    return context
