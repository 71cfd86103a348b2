"""Consumers: found or created for an allocation write, generation-checked.

A consumer is whatever holds allocations (an instance, a migration). It is
created by the first allocation write naming it, owned by a project and user
(made on demand), optionally typed (1.38). Its ``generation`` starts at 0 and
every allocation write that gives it allocations, or takes them away, bumps
it; a write that takes its last allocations deletes it.

Upstream creates a write's consumers before anything else is checked, so some
consumers exist without allocations (at generation 0): one named by a write
of empty allocations, or by a write refused for naming a missing provider.
Stowage keeps the same consumers, since their generations are what clients
must send next.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from stowage import errors
from stowage.storage import consumers as consumer_storage
from stowage.storage.consumers import ConsumerRow


@dataclass(frozen=True)
class ConsumerClaim:
    """Who a write says the consumer is, and which generation it last saw.

    ``generation`` is only checked when ``check_generation`` (microversion
    1.28+), where None means "I believe the consumer does not exist yet".
    ``consumer_type`` None leaves the type as it is (before 1.38).
    """

    uuid: str
    project_id: str
    user_id: str
    generation: int | None = None
    check_generation: bool = False
    consumer_type: str | None = None


def ensure_consumer(
    connection: Connection, claim: ConsumerClaim, gets_allocations: bool = False
) -> tuple[ConsumerRow, bool]:
    """The consumer of ``claim``, created if missing and re-owned if asked,
    and whether this write created it.

    A consumer created for a write that gives it allocations is inserted at
    generation 1, where the write's bump would take it (nothing is
    committed unless the whole write is). Raises
    ``ConsumerGenerationMismatch`` when the generation check fails, and
    ``ConsumerRaceLost`` (the write runs again) when a concurrent writer
    created it first. A changed project, user or type is written without
    bumping the generation; the allocation write that follows bumps it.
    """
    found = consumer_storage.look_up_consumer(
        connection, claim.uuid, claim.project_id, claim.user_id, claim.consumer_type
    )
    project_id = found.project_id
    if project_id is None:
        project_id = consumer_storage.ensure_project(connection, claim.project_id, missing=True)
    user_id = found.user_id
    if user_id is None:
        user_id = consumer_storage.ensure_user(connection, claim.user_id, missing=True)
    type_id = found.consumer_type_id
    if claim.consumer_type is not None and type_id is None:
        type_id = consumer_storage.ensure_consumer_type(connection, claim.consumer_type, missing=True)
    consumer = found.consumer
    if consumer is None:
        if claim.check_generation and claim.generation is not None:
            raise errors.ConsumerGenerationMismatch(claim.uuid, None, claim.generation)
        created = consumer_storage.insert_consumer(
            connection,
            claim.uuid,
            (project_id, user_id, type_id),
            1 if gets_allocations else 0,
            (claim.project_id, claim.user_id, claim.consumer_type),
        )
        return created, True
    if claim.check_generation and consumer.generation != claim.generation:
        raise errors.ConsumerGenerationMismatch(claim.uuid, consumer.generation, claim.generation)

    wanted_type = consumer.consumer_type_id if type_id is None else type_id
    if (consumer.project_id, consumer.user_id, consumer.consumer_type_id) != (
        project_id,
        user_id,
        wanted_type,
    ):
        consumer_storage.update_consumer_owner(connection, consumer, project_id, user_id, wanted_type)
    return consumer, False


def create_missing_consumer(connection: Connection, claim: ConsumerClaim) -> None:
    """Create the consumer of ``claim`` (generation 0) unless it exists."""
    if consumer_storage.find_consumer(connection, claim.uuid) is None:
        consumer_storage.create_consumer(connection, claim.uuid, *_owner_ids(connection, claim))


def _owner_ids(connection: Connection, claim: ConsumerClaim) -> tuple[int, int, int | None]:
    """Ids of the claim's project, user and type (None: keep), made if missing."""
    project_id = consumer_storage.ensure_project(connection, claim.project_id)
    user_id = consumer_storage.ensure_user(connection, claim.user_id)
    type_id = None
    if claim.consumer_type is not None:
        type_id = consumer_storage.ensure_consumer_type(connection, claim.consumer_type)
    return project_id, user_id, type_id


def bump_generation(connection: Connection, consumer: ConsumerRow, conflict_lead: str) -> None:
    """Advance the consumer's generation from the one read in this transaction.

    Raises ``ConsumerGenerationConflict`` if a concurrent writer moved it.
    """
    if not consumer_storage.increment_consumer_generation(connection, consumer.id, consumer.generation):
        raise errors.ConsumerGenerationConflict(
            f"{conflict_lead}Another thread concurrently updated the data. "
            "Please retry your update"
        )
