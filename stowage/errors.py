"""Domain exceptions, each carrying its Placement API error code.

The hierarchy::

    StowageError                      400 placement.undefined_code (base)
    ├── BadRequest                    400 (invalid input the schemas cannot catch)
    │   └── InvalidInventory          400
    ├── NotFound                      404
    ├── Conflict                      409
    │   ├── ConcurrentUpdate          409 placement.concurrent_update
    │   ├── Duplicate                 409 placement.duplicate_name
    │   ├── InventoryInUse            409 placement.inventory.inuse
    │   ├── ResourceProviderInUse     409 (has allocations)
    │   ├── CannotDeleteParent        409 placement.resource_provider.cannot_delete_parent
    │   ├── ConsumerGenerationConflict 409 placement.concurrent_update
    │   └── InUse                     409 (class or trait still referenced)
    ├── NotAllowed                    405
    ├── NotAcceptable                 406
    ├── UnsupportedMediaType          415
    ├── Forbidden                     403
    └── Unauthorized                  401

The HTTP layer maps these to a status and a JSON error body in one place
(``stowage.api.errors``); nothing below the API knows about HTTP.
"""
from __future__ import annotations

# Error codes as upstream Placement names them (microversion 1.23+).
DEFAULT = "placement.undefined_code"
INVENTORY_INUSE = "placement.inventory.inuse"
CONCURRENT_UPDATE = "placement.concurrent_update"
DUPLICATE_NAME = "placement.duplicate_name"
PROVIDER_IN_USE = "placement.resource_provider.inuse"
PROVIDER_CANNOT_DELETE_PARENT = "placement.resource_provider.cannot_delete_parent"
RESOURCE_PROVIDER_NOT_FOUND = "placement.resource_provider.not_found"
ILLEGAL_DUPLICATE_QUERYPARAM = "placement.query.duplicate_key"
QUERYPARAM_BAD_VALUE = "placement.query.bad_value"
QUERYPARAM_MISSING_VALUE = "placement.query.missing_value"


class StowageError(Exception):
    """Base of every error the domain raises on purpose."""

    status = 400
    code = DEFAULT

    def __init__(self, detail: str, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class BadRequest(StowageError):
    status = 400


class InvalidInventory(BadRequest):
    pass


class Unauthorized(StowageError):
    status = 401


class Forbidden(StowageError):
    status = 403


class NotFound(StowageError):
    status = 404


class NotAllowed(StowageError):
    status = 405

    def __init__(self, detail: str, allowed: list[str]) -> None:
        super().__init__(detail)
        self.allowed = allowed


class NotAcceptable(StowageError):
    status = 406


class Conflict(StowageError):
    status = 409


class ConcurrentUpdate(Conflict):
    code = CONCURRENT_UPDATE


class Duplicate(Conflict):
    code = DUPLICATE_NAME


class InventoryInUse(Conflict):
    code = INVENTORY_INUSE


class ResourceProviderInUse(Conflict):
    code = PROVIDER_IN_USE


class CannotDeleteParent(Conflict):
    code = PROVIDER_CANNOT_DELETE_PARENT


class ConsumerGenerationConflict(Conflict):
    code = CONCURRENT_UPDATE


class InUse(Conflict):
    pass


class UnsupportedMediaType(StowageError):
    status = 415


class NotImplementedYet(StowageError):
    """An API the service does not serve yet; answered as 501."""

    status = 501
