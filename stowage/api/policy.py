"""Policy rule names and defaults, identical to upstream Placement's.

An operator's existing ``policy.yaml`` keeps working: the names, the base
rules and the deprecated ``role:admin`` fallback (legacy RBAC, used while
``[oslo_policy] enforce_new_defaults`` is false) all match.
"""
from __future__ import annotations

from oslo_config import cfg
from oslo_policy import policy

from stowage import errors

ADMIN_OR_SERVICE = "rule:admin_or_service_api"
SERVICE = "rule:service_api"
ADMIN_OR_PROJECT_READER_OR_SERVICE = "rule:admin_or_project_reader_or_service_api"

_LEGACY_ADMIN = policy.DeprecatedRule(
    name="rule:admin_api",
    check_str="role:admin",
    deprecated_reason="Placement moved to role-based defaults with scope types.",
    deprecated_since="W",
)

RESOURCE_PROVIDERS_LIST = "placement:resource_providers:list"
RESOURCE_PROVIDERS_CREATE = "placement:resource_providers:create"
RESOURCE_PROVIDERS_SHOW = "placement:resource_providers:show"
RESOURCE_PROVIDERS_UPDATE = "placement:resource_providers:update"
RESOURCE_PROVIDERS_DELETE = "placement:resource_providers:delete"
RESOURCE_CLASSES_LIST = "placement:resource_classes:list"
RESOURCE_CLASSES_CREATE = "placement:resource_classes:create"
RESOURCE_CLASSES_SHOW = "placement:resource_classes:show"
RESOURCE_CLASSES_UPDATE = "placement:resource_classes:update"
RESOURCE_CLASSES_DELETE = "placement:resource_classes:delete"
INVENTORIES_LIST = "placement:resource_providers:inventories:list"
INVENTORIES_CREATE = "placement:resource_providers:inventories:create"
INVENTORIES_SHOW = "placement:resource_providers:inventories:show"
INVENTORIES_UPDATE = "placement:resource_providers:inventories:update"
INVENTORIES_DELETE = "placement:resource_providers:inventories:delete"
AGGREGATES_LIST = "placement:resource_providers:aggregates:list"
AGGREGATES_UPDATE = "placement:resource_providers:aggregates:update"
PROVIDER_USAGES = "placement:resource_providers:usages"
TOTAL_USAGES = "placement:usages"
TRAITS_LIST = "placement:traits:list"
TRAITS_SHOW = "placement:traits:show"
TRAITS_UPDATE = "placement:traits:update"
TRAITS_DELETE = "placement:traits:delete"
PROVIDER_TRAITS_LIST = "placement:resource_providers:traits:list"
PROVIDER_TRAITS_UPDATE = "placement:resource_providers:traits:update"
PROVIDER_TRAITS_DELETE = "placement:resource_providers:traits:delete"
ALLOCATIONS_MANAGE = "placement:allocations:manage"
ALLOCATIONS_LIST = "placement:allocations:list"
ALLOCATIONS_UPDATE = "placement:allocations:update"
ALLOCATIONS_DELETE = "placement:allocations:delete"
PROVIDER_ALLOCATIONS_LIST = "placement:resource_providers:allocations:list"
ALLOCATION_CANDIDATES_LIST = "placement:allocation_candidates:list"
RESHAPE = "placement:reshaper:reshape"

_BASE_RULES = [
    policy.RuleDefault("admin_api", "role:admin", "Administrators.", scope_types=["project"]),
    policy.RuleDefault(
        "service_api",
        "role:service",
        "Service-to-service callers.",
        scope_types=["project"],
        deprecated_rule=_LEGACY_ADMIN,
    ),
    policy.RuleDefault(
        "admin_or_service_api",
        "role:admin or role:service",
        "Administrators or services; the default of most Placement APIs.",
        scope_types=["project"],
        deprecated_rule=_LEGACY_ADMIN,
    ),
    policy.RuleDefault(
        "project_reader_api",
        "role:reader and project_id:%(project_id)s",
        "Readers of the project named in the request.",
        deprecated_rule=_LEGACY_ADMIN,
    ),
    policy.RuleDefault(
        "admin_or_project_reader_or_service_api",
        "role:admin or rule:project_reader_api or role:service",
        "Administrators, services or the project's readers.",
        scope_types=["project"],
        deprecated_rule=_LEGACY_ADMIN,
    ),
]

# (rule name, check string, method, path)
_API_RULES = [
    (RESOURCE_PROVIDERS_LIST, ADMIN_OR_SERVICE, "GET", "/resource_providers"),
    (RESOURCE_PROVIDERS_CREATE, ADMIN_OR_SERVICE, "POST", "/resource_providers"),
    (RESOURCE_PROVIDERS_SHOW, ADMIN_OR_SERVICE, "GET", "/resource_providers/{uuid}"),
    (RESOURCE_PROVIDERS_UPDATE, ADMIN_OR_SERVICE, "PUT", "/resource_providers/{uuid}"),
    (RESOURCE_PROVIDERS_DELETE, ADMIN_OR_SERVICE, "DELETE", "/resource_providers/{uuid}"),
    (RESOURCE_CLASSES_LIST, ADMIN_OR_SERVICE, "GET", "/resource_classes"),
    (RESOURCE_CLASSES_CREATE, ADMIN_OR_SERVICE, "POST", "/resource_classes"),
    (RESOURCE_CLASSES_SHOW, ADMIN_OR_SERVICE, "GET", "/resource_classes/{name}"),
    (RESOURCE_CLASSES_UPDATE, ADMIN_OR_SERVICE, "PUT", "/resource_classes/{name}"),
    (RESOURCE_CLASSES_DELETE, ADMIN_OR_SERVICE, "DELETE", "/resource_classes/{name}"),
    (INVENTORIES_LIST, ADMIN_OR_SERVICE, "GET", "/resource_providers/{uuid}/inventories"),
    (INVENTORIES_CREATE, ADMIN_OR_SERVICE, "POST", "/resource_providers/{uuid}/inventories"),
    (INVENTORIES_SHOW, ADMIN_OR_SERVICE, "GET", "/resource_providers/{uuid}/inventories/{rc}"),
    (INVENTORIES_UPDATE, ADMIN_OR_SERVICE, "PUT", "/resource_providers/{uuid}/inventories"),
    (INVENTORIES_DELETE, ADMIN_OR_SERVICE, "DELETE", "/resource_providers/{uuid}/inventories"),
    (AGGREGATES_LIST, ADMIN_OR_SERVICE, "GET", "/resource_providers/{uuid}/aggregates"),
    (AGGREGATES_UPDATE, ADMIN_OR_SERVICE, "PUT", "/resource_providers/{uuid}/aggregates"),
    (PROVIDER_USAGES, ADMIN_OR_SERVICE, "GET", "/resource_providers/{uuid}/usages"),
    (TOTAL_USAGES, ADMIN_OR_PROJECT_READER_OR_SERVICE, "GET", "/usages"),
    (TRAITS_LIST, ADMIN_OR_SERVICE, "GET", "/traits"),
    (TRAITS_SHOW, ADMIN_OR_SERVICE, "GET", "/traits/{name}"),
    (TRAITS_UPDATE, ADMIN_OR_SERVICE, "PUT", "/traits/{name}"),
    (TRAITS_DELETE, ADMIN_OR_SERVICE, "DELETE", "/traits/{name}"),
    (PROVIDER_TRAITS_LIST, ADMIN_OR_SERVICE, "GET", "/resource_providers/{uuid}/traits"),
    (PROVIDER_TRAITS_UPDATE, ADMIN_OR_SERVICE, "PUT", "/resource_providers/{uuid}/traits"),
    (PROVIDER_TRAITS_DELETE, ADMIN_OR_SERVICE, "DELETE", "/resource_providers/{uuid}/traits"),
    (ALLOCATIONS_MANAGE, ADMIN_OR_SERVICE, "POST", "/allocations"),
    (ALLOCATIONS_LIST, ADMIN_OR_SERVICE, "GET", "/allocations/{consumer_uuid}"),
    (ALLOCATIONS_UPDATE, ADMIN_OR_SERVICE, "PUT", "/allocations/{consumer_uuid}"),
    (ALLOCATIONS_DELETE, ADMIN_OR_SERVICE, "DELETE", "/allocations/{consumer_uuid}"),
    (
        PROVIDER_ALLOCATIONS_LIST,
        ADMIN_OR_SERVICE,
        "GET",
        "/resource_providers/{uuid}/allocations",
    ),
    (ALLOCATION_CANDIDATES_LIST, ADMIN_OR_SERVICE, "GET", "/allocation_candidates"),
    (RESHAPE, SERVICE, "POST", "/reshaper"),
]


def list_rules() -> list[policy.RuleDefault]:
    """Every rule default, for the enforcer and for ``oslopolicy-*`` tools."""
    return _BASE_RULES + [
        policy.DocumentedRuleDefault(
            name=name,
            check_str=check,
            description=f"{method} {path}",
            operations=[{"method": method, "path": path}],
            scope_types=["project"],
        )
        for name, check, method, path in _API_RULES
    ]


class PolicyEnforcer:
    """Checks a caller against the policy rules; one per app."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self._enforcer = policy.Enforcer(conf)
        self._enforcer.suppress_default_change_warnings = True
        self._enforcer.suppress_deprecation_warnings = True
        self._enforcer.register_defaults(list_rules())
        self._enforcer.load_rules()

    def authorize(self, rule: str, credentials: dict, target: dict) -> None:
        """Raise ``errors.Forbidden`` unless ``credentials`` may do ``rule``."""
        try:
            allowed = self._enforcer.authorize(rule, target, credentials, do_raise=False)
        except policy.InvalidScope:
            allowed = False
        if not allowed:
            raise errors.Forbidden(f"Policy does not allow {rule} to be performed.")
