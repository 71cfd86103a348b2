"""Domain exceptions, each carrying its Placement API error code.

The hierarchy::

    StowageError                      400 placement.undefined_code (base)
    ├── BadRequest                    400 (invalid input the schemas cannot catch)
    │   ├── InvalidInventory          400
    │   │   ├── InvalidInventoryCapacity 400 (reserved leaves no capacity)
    │   │   └── UnknownInventoryClass 400 (no such resource class)
    │   ├── InventoryToUpdateMissing  400 (PUT of one inventory the provider lacks)
    │   ├── StandardResourceClass     400 (cannot rename or delete)
    │   ├── InvalidTraitName          400 (not CUSTOM_[A-Z0-9_]+)
    │   ├── AllocationProviderNotFound 400 (allocation names a missing provider)
    │   ├── UnknownResourceClassInRequest 400 (allocation or reshape names a missing class)
    │   ├── ReshapeProviderNotFound   400 placement.resource_provider.not_found
    │   ├── StandardTraitUndeletable  400
    │   └── UnknownTraits             400 (named in a request body)
    ├── NotFound                      404
    │   ├── ProviderNotFound          404 (answered by an outer layer, as upstream)
    │   ├── TraitNotFound             404
    │   ├── InventoryNotFound         404
    │   └── ResourceClassNotFound     404
    ├── Conflict                      409
    │   ├── ConcurrentUpdate          409 placement.concurrent_update
    │   │   ├── TransactionAborted    409 (deadlock; the API retries first)
    │   │   ├── ProviderGenerationChanged 409 (client sent a stale generation)
    │   │   ├── ProviderGenerationMoved 409 (a generation compare-and-swap lost)
    │   │   ├── ReshapeGenerationMismatch 409 (stale generation in a reshape)
    │   │   └── AllocationWriteConflict 409 (lost generation races, retries exhausted)
    │   ├── Duplicate                 409 placement.duplicate_name
    │   ├── InventoryInUse            409 placement.inventory.inuse
    │   │   └── ClassesInUse          409 (allocations consume it)
    │   ├── InventoryExists           409 placement.concurrent_update (as upstream)
    │   ├── ResourceClassExists       409
    │   ├── ResourceProviderInUse     409 (has allocations)
    │   ├── CannotDeleteParent        409 placement.resource_provider.cannot_delete_parent
    │   ├── ConsumerGenerationConflict 409 placement.concurrent_update
    │   │   └── ConsumerGenerationMismatch 409 (client sent a stale consumer generation)
    │   ├── AllocationDoesNotFit      409 (allocation against a provider's inventory)
    │   │   ├── NoInventoryForAllocation  409 (provider lacks the class)
    │   │   ├── AllocationConstraintsViolated 409 (min_unit, max_unit, step_size)
    │   │   └── CapacityExceeded      409 (more than (total - reserved) * ratio)
    │   └── InUse                     409 (class or trait still referenced)
    │       ├── TraitInUse            409
    │       └── ResourceClassInUse    409
    ├── NotAllowed                    405
    ├── NotAcceptable                 406
    ├── RequestTimeout                408 (the client stalled sending its body)
    ├── PayloadTooLarge               413
    ├── UnsupportedMediaType          415
    ├── Forbidden                     403
    ├── InternalError                 500 (unexpected; rendered by the API)
    ├── ServiceUnavailable            503 (Keystone cannot validate tokens just now)
    │   └── DatabaseUnavailable       503 (the database cannot be reached)
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
    # Upstream's handlers let some lookups' errors escape to an outer layer,
    # which answers without the ``vary`` header; these say so.
    escapes_handler = False

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


class ProviderNotFound(NotFound):
    """No provider has the uuid a request names (in its path, mostly)."""

    escapes_handler = True

    def __init__(self, uuid: str) -> None:
        super().__init__(f"No resource provider with uuid {uuid} found")
        self.uuid = uuid


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


class InternalError(StowageError):
    """Something unexpected; only the outermost HTTP layer raises this."""

    status = 500


class RequestTimeout(StowageError):
    status = 408


class PayloadTooLarge(StowageError):
    status = 413


class ServiceUnavailable(StowageError):
    """A service Stowage relies on for every request (Keystone) cannot answer."""

    status = 503


class DatabaseUnavailable(ServiceUnavailable):
    """The database refused or lost the connection (stopped, restarting)."""


# Traits and provider generations (traits and aggregates APIs).


class InvalidTraitName(BadRequest):
    """A custom trait name that is not ``CUSTOM_`` plus ``A-Z``, ``0-9``, ``_``."""

    def __init__(self, name: str) -> None:
        super().__init__(
            "The trait is invalid. A valid trait must be no longer than 255 "
            'characters, start with the prefix "CUSTOM_" and use following '
            'characters: "A"-"Z", "0"-"9" and "_"'
        )
        self.name = name


class StandardTraitUndeletable(BadRequest):
    """Standard (os-traits) traits are never deleted."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Cannot delete standard trait {name}.")
        self.name = name


class UnknownTraits(BadRequest):
    """A request body names traits that do not exist."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(f"No such trait {', '.join(names)}")
        self.names = names


class TraitNotFound(NotFound):
    """The trait named in the path does not exist."""

    def __init__(self, name: str) -> None:
        super().__init__(f"No such trait(s): {name}.")
        self.name = name


class TraitInUse(InUse):
    """A custom trait cannot be deleted while a provider has it."""

    def __init__(self, name: str) -> None:
        super().__init__(f"The trait {name} is in use by a resource provider.")
        self.name = name


class ProviderGenerationChanged(ConcurrentUpdate):
    """The generation the client sent is not the provider's current one."""

    def __init__(self, provider_uuid: str, expected: int, actual: int) -> None:
        super().__init__(
            "Resource provider's generation already changed. Please update "
            "the generation and try again."
        )
        self.provider_uuid = provider_uuid
        self.expected = expected
        self.actual = actual


class ProviderGenerationMoved(ConcurrentUpdate):
    """A compare-and-swap of a provider generation found another writer's.

    ``generation`` is the one the writer expected (it read it, or the
    client sent it); another transaction committed a bump since.
    """

    def __init__(self, provider_uuid: str, generation: int) -> None:
        super().__init__(
            f"resource provider generation conflict: provider {provider_uuid} "
            "was updated by another request. Please refresh and try again."
        )
        self.provider_uuid = provider_uuid
        self.generation = generation


# Inventories and resource classes (inventories and resource classes APIs).


class InvalidInventoryCapacity(InvalidInventory):
    """Reserved leaves no capacity: ``int((total - reserved) * ratio)`` is too small.

    Before 1.26 the capacity must be positive; from 1.26 zero is allowed
    (``reserved == total``). ``creating`` picks the lead of the message, which
    clients have long matched on.
    """

    def __init__(
        self, provider_uuid: str, resource_class: str, reserved_may_equal_total: bool, creating: bool
    ) -> None:
        bound = "greater than" if reserved_may_equal_total else "greater than or equal to"
        verb = "create" if creating else "update"
        super().__init__(
            f"Unable to {verb} inventory for resource provider {provider_uuid}: "
            f"Invalid inventory for '{resource_class}' on resource provider "
            f"'{provider_uuid}'. The reserved value is {bound} total."
        )
        self.provider_uuid = provider_uuid
        self.resource_class = resource_class


class UnknownInventoryClass(InvalidInventory):
    """An inventory body names a resource class that does not exist."""

    def __init__(self, provider_uuid: str, resource_class: str, replacing: bool) -> None:
        lead = (
            "Unknown resource class in inventory for resource provider"
            if replacing
            else "Unable to create inventory for resource provider"
        )
        super().__init__(f"{lead} {provider_uuid}: No such resource class {resource_class}.")
        self.provider_uuid = provider_uuid
        self.resource_class = resource_class


class InventoryNotFound(NotFound):
    """The provider has no inventory of the class named in the path.

    Deleting, upstream's handler restates why its lookup failed: no such
    inventory, or (``class_exists`` False) no such resource class.
    """

    def __init__(
        self,
        provider_uuid: str,
        resource_class: str,
        deleting: bool = False,
        class_exists: bool = True,
    ) -> None:
        if deleting:
            lead = f"No inventory of class {resource_class} found for delete"
            reason = lead if class_exists else f"No such resource class {resource_class}."
            detail = f"{lead}: {reason}"
        else:
            detail = f"No inventory of class {resource_class} for {provider_uuid}"
        super().__init__(detail)
        self.provider_uuid = provider_uuid
        self.resource_class = resource_class


class InventoryToUpdateMissing(BadRequest):
    """PUT of one inventory whose class the provider has no inventory of (400, as upstream)."""

    def __init__(self, provider_uuid: str, resource_class: str) -> None:
        super().__init__(
            "No inventory record with resource class for resource provider "
            f"{provider_uuid}: No inventory of class {resource_class} found."
        )
        self.provider_uuid = provider_uuid
        self.resource_class = resource_class


class InventoryExists(Conflict):
    """POST of an inventory whose class the provider already has.

    Upstream answers this with ``placement.concurrent_update``; we keep it.
    """

    code = CONCURRENT_UPDATE

    def __init__(self, provider_uuid: str, resource_class: str) -> None:
        super().__init__(
            f"Update conflict: Inventory for '{resource_class}' on resource "
            f"provider '{provider_uuid}' already exists."
        )
        self.provider_uuid = provider_uuid
        self.resource_class = resource_class


class ClassesInUse(InventoryInUse):
    """Inventory cannot be removed while allocations consume it.

    ``lead`` prefixes the message where an endpoint always has (deleting one
    inventory); that endpoint also answers with ``placement.concurrent_update``
    rather than ``placement.inventory.inuse``, a quirk kept for compatibility.
    """

    def __init__(
        self,
        provider_uuid: str,
        resource_classes: list[str],
        lead: str = "",
        code: str | None = None,
    ) -> None:
        names = ", ".join(resource_classes)
        super().__init__(
            f"{lead}Inventory for '{names}' on resource provider '{provider_uuid}' in use.",
            code=code,
        )
        self.provider_uuid = provider_uuid
        self.resource_classes = resource_classes


class ResourceClassNotFound(NotFound):
    """No resource class has the name given in the path."""

    escapes_handler = True

    def __init__(self, name: str) -> None:
        super().__init__(f"No such resource class {name}.")
        self.name = name


class ResourceClassExists(Conflict):
    """A resource class of that name already exists (no specific code, as upstream)."""

    def __init__(self, name: str, renaming: bool = False) -> None:
        lead = "Resource class already exists" if renaming else "Conflicting resource class already exists"
        super().__init__(f"{lead}: {name}")
        self.name = name


class StandardResourceClass(BadRequest):
    """Standard (os-resource-classes) classes are never renamed or deleted."""

    def __init__(self, name: str, deleting: bool) -> None:
        if deleting:
            detail = f"Error in delete resource class: Cannot delete standard resource class {name}."
        else:
            detail = f"Cannot update standard resource class {name}"
        super().__init__(detail)
        self.name = name


class ResourceClassInUse(InUse):
    """A custom class cannot be deleted while inventories or allocations use it."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"Error in delete resource class: Cannot delete resource class {name}. "
            "Class is in use in inventory."
        )
        self.name = name


# Allocations, consumers and reshapes (allocations and reshaper APIs).


class AllocationProviderNotFound(BadRequest):
    """An allocation names a resource provider that does not exist."""

    def __init__(self, provider_uuid: str) -> None:
        super().__init__(
            f"Allocation for resource provider '{provider_uuid}' that does not exist."
        )
        self.provider_uuid = provider_uuid


class UnknownResourceClassInRequest(BadRequest):
    """An allocation or reshape names a resource class that does not exist.

    ``lead`` says what failed; it differs by endpoint, as clients have long seen.
    """

    def __init__(self, name: str, lead: str) -> None:
        super().__init__(f"{lead}No such resource class {name}.")
        self.name = name


class ReshapeProviderNotFound(BadRequest):
    """A reshape names inventories of a provider that does not exist."""

    code = RESOURCE_PROVIDER_NOT_FOUND

    def __init__(self, provider_uuid: str) -> None:
        super().__init__(
            f"Resource provider {provider_uuid} in inventories not found: "
            f"No resource provider with uuid {provider_uuid} found"
        )
        self.provider_uuid = provider_uuid


class ReshapeGenerationMismatch(ConcurrentUpdate):
    """A reshape carries a provider generation that is not the current one."""

    def __init__(self, provider_uuid: str, actual: int, given: int) -> None:
        super().__init__(
            f"resource provider generation conflict for provider {provider_uuid}: "
            f"actual: {actual}, given: {given}"
        )
        self.provider_uuid = provider_uuid
        self.actual = actual
        self.given = given


class AllocationWriteConflict(ConcurrentUpdate):
    """Concurrent writers kept changing the providers; the server gave up retrying."""

    def __init__(self, lead: str) -> None:
        super().__init__(
            f"{lead}Another thread concurrently updated the resource provider data. "
            "Please retry your update"
        )


class ConsumerGenerationMismatch(ConsumerGenerationConflict):
    """The consumer generation sent is not the consumer's current one.

    ``expected`` is the stored generation (None: the consumer does not exist).
    """

    def __init__(self, consumer_uuid: str, expected: int | None, given: int | None) -> None:
        shown = "null" if expected is None else expected
        super().__init__(f"consumer generation conflict - expected {shown} but got {given}")
        self.consumer_uuid = consumer_uuid
        self.expected = expected
        self.given = given


class AllocationDoesNotFit(Conflict):
    """Base of the ways a set of allocations can fail against inventory."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Unable to allocate inventory: {reason}")


class NoInventoryForAllocation(AllocationDoesNotFit):
    """The provider(s) have no inventory of the class(es) allocated."""

    def __init__(self, resource_classes: list[str], provider_uuids: list[str]) -> None:
        super().__init__(
            f"Inventory for '{', '.join(resource_classes)}' on resource provider "
            f"'{', '.join(provider_uuids)}' invalid."
        )
        self.resource_classes = resource_classes
        self.provider_uuids = provider_uuids


class AllocationConstraintsViolated(AllocationDoesNotFit):
    """An amount is below min_unit, above max_unit or not a multiple of step_size."""

    def __init__(self, resource_class: str, provider_uuid: str) -> None:
        super().__init__(
            f"Unable to create allocation for '{resource_class}' on resource provider "
            f"'{provider_uuid}'. The requested amount would violate inventory constraints."
        )
        self.resource_class = resource_class
        self.provider_uuid = provider_uuid


class CapacityExceeded(AllocationDoesNotFit):
    """The provider's usage would exceed (total - reserved) * allocation_ratio."""

    def __init__(self, resource_class: str, provider_uuid: str) -> None:
        super().__init__(
            f"Unable to create allocation for '{resource_class}' on resource provider "
            f"'{provider_uuid}'. The requested amount would exceed the capacity."
        )
        self.resource_class = resource_class
        self.provider_uuid = provider_uuid


class TransactionAborted(ConcurrentUpdate):
    """The database aborted a transaction (deadlock, serialization failure).

    Nothing was written; the HTTP layer re-runs the request a few times
    before answering 409. Allocation writes run again in the domain instead,
    in one budget with lost generation races (``replace_allocations``).
    """
