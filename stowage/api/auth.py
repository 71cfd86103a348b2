"""Authentication: noauth2 tokens or Keystone, then a request context.

noauth2 follows upstream's token semantics: ``x-auth-token: admin`` is an
administrator, ``user`` a plain user, ``user:project`` names both; roles may
be given explicitly with ``x-roles``. The root document and the API's
description need no token (``Route.public``).

With Keystone, keystonemiddleware asks Keystone about every token as a
service user whose credentials ``[keystone_authtoken]`` holds. A section that
could never do so is refused before an app is built (``check_auth_config``);
a Keystone that cannot answer just now makes each request a 503, not a 500.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import webob.exc
from keystoneauth1 import exceptions as keystoneauth_exceptions
from keystoneauth1 import loading, plugin
from keystonemiddleware import auth_token
from oslo_config import cfg
from oslo_context import context as oslo_context

from stowage import errors
from stowage.api.routes import PUBLIC_PATHS, TOKEN_CHECKED_PATHS

LOG = logging.getLogger(__name__)

AUTHTOKEN_GROUP = "keystone_authtoken"
# The keystoneauth plugins that log in with a user's password.
PASSWORD_PLUGINS = ("password", "v3password")
KEYSTONE_UNAVAILABLE = (
    "Tokens cannot be validated just now: Keystone is unreachable or refused "
    "this service's credentials (see the service log)."
)


def _is_public(environ: dict) -> bool:
    path = environ.get("PATH_INFO", "")
    if "HTTP_X_AUTH_TOKEN" in environ and path in TOKEN_CHECKED_PATHS:
        # Health and metrics show administrators more: their token is
        # checked (a bad one is a 401); no token is an anonymous caller.
        return False
    return path in PUBLIC_PATHS


class NoAuth2:
    """Trust ``x-auth-token`` as ``user[:project]`` (for tests and loopback)."""

    def __init__(self, application) -> None:
        self.application = application

    def __call__(self, environ, start_response):
        if _is_public(environ):
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


class KeystoneConfigError(ValueError):
    """``[keystone_authtoken]`` cannot validate tokens; ``problems`` says why."""

    def __init__(self, group: str, problems: list[str]) -> None:
        self.group = group
        self.problems = problems
        section = f"[{AUTHTOKEN_GROUP}]"
        if group != AUTHTOKEN_GROUP:
            section += f" (through auth_section, [{group}])"
        super().__init__(
            f"[api] auth_strategy = keystone, but {section} cannot validate tokens: "
            f"{'; '.join(problems)}. Stowage asks Keystone about every token as a service "
            "user, whose credentials that section holds: for example auth_type = password, "
            "auth_url, username, user_domain_name, password, project_name and "
            "project_domain_name (see docs/keystone.md)."
        )


def check_auth_config(conf: cfg.ConfigOpts) -> None:
    """Raise ``KeystoneConfigError`` if keystone auth is configured so that no
    token could ever be validated.

    Only the configuration is read; Keystone is not contacted, since it may
    well start after this service.
    """
    if conf.api.auth_strategy != "keystone":
        return
    group = conf[AUTHTOKEN_GROUP].auth_section or AUTHTOKEN_GROUP
    problems = keystone_config_problems(conf, group)
    if problems:
        raise KeystoneConfigError(group, problems)


def keystone_config_problems(conf: cfg.ConfigOpts, group: str) -> list[str]:
    """What keeps the auth plugin configured in ``[group]`` from logging in.

    Registers the plugin's options on ``conf``, as keystonemiddleware does
    when it loads the plugin.
    """
    # keystonemiddleware reads auth_type from the auth_section's group too.
    loading.register_auth_conf_options(conf, group)
    plugin_name = conf[group].auth_type
    if not plugin_name:
        return ["auth_type is not set"]
    try:
        loader: loading.BaseLoader[plugin.BaseAuthPlugin] = loading.get_plugin_loader(plugin_name)
    except keystoneauth_exceptions.NoMatchingPlugin:
        return [f"auth_type = {plugin_name} names no keystoneauth plugin"]
    conf.register_opts(loading.get_auth_plugin_conf_options(loader), group=group)
    names = {option.dest for option in loader.get_options()}

    def value(name: str) -> object:
        return conf[group][name] if name in names else None

    problems = [
        f"{option.dest} is not set"
        for option in loader.get_options()
        if option.required and value(option.dest) in (None, "")
    ]
    if plugin_name in PASSWORD_PLUGINS:
        problems += _password_problems(value)
    return problems


def _password_problems(value: Callable[[str], object]) -> list[str]:
    """What a password plugin lacks to get a token with a role on it.

    keystoneauth marks only auth_url as required; without the rest, Keystone
    would turn the service user away on every request instead. A token with
    no scope carries no role, and Keystone lets no role-less token validate
    another.
    """

    def unset(*names: str) -> bool:
        return not any(value(name) for name in names)

    problems = []
    if unset("username", "user_id"):
        problems.append("username (or user_id) is not set")
    elif unset("user_id") and unset(
        "user_domain_name", "user_domain_id", "default_domain_name", "default_domain_id"
    ):
        problems.append("user_domain_name (or user_domain_id) is not set")
    if unset("password"):
        problems.append("password is not set")
    if unset("project_name", "project_id", "domain_name", "domain_id", "system_scope"):
        problems.append("project_name (or project_id, or a domain or system scope) is not set")
    elif (
        value("project_name")
        and unset("project_id")
        and unset("project_domain_name", "project_domain_id", "default_domain_name", "default_domain_id")
    ):
        problems.append("project_domain_name (or project_domain_id) is not set")
    return problems


class Keystone(auth_token.AuthProtocol):
    """keystonemiddleware's auth_token, leaving the root document open.

    Raises ``KeystoneConfigError`` at construction for a section that cannot
    validate tokens.
    """

    def __init__(self, application, conf: cfg.ConfigOpts) -> None:
        check_auth_config(conf)
        self._unprotected = application
        super().__init__(application, {"oslo_config_config": conf})

    def __call__(self, environ, start_response):
        if _is_public(environ):
            return self._unprotected(environ, start_response)
        return super().__call__(environ, start_response)

    def fetch_token(self, token, **kwargs):
        """keystonemiddleware's lookup, with Keystone's unavailability raised as
        ``ServiceUnavailable``, which the app renders as Placement's 503."""
        try:
            return super().fetch_token(token, **kwargs)
        except webob.exc.HTTPServiceUnavailable:
            # keystonemiddleware has logged why; its own 503 body is not
            # Placement's error format.
            raise errors.ServiceUnavailable(KEYSTONE_UNAVAILABLE) from None
        except keystoneauth_exceptions.ClientException as error:
            # What keystonemiddleware lets escape, such as a catalog without
            # Keystone's endpoint for [keystone_authtoken] interface.
            LOG.critical("Unable to validate token: %s", error)
            raise errors.ServiceUnavailable(KEYSTONE_UNAVAILABLE) from None


def context_from_environ(environ: dict, request_id: str) -> oslo_context.RequestContext:
    """The caller, from the identity headers auth placed in ``environ``.

    Raises ``Unauthorized`` when no user is known (except on public routes).
    """
    context = oslo_context.RequestContext.from_environ(environ, request_id=request_id)
    if context.user_id is None and not _is_public(environ):
        raise errors.Unauthorized("No user identity in the request.")
    return context
