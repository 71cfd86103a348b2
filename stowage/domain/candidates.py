"""Allocation candidates: check the names a request uses, then run the
configured engine.

``[stowage] candidate_engine`` picks it: ``reference`` loads a snapshot of
the trees in play per request; ``fast`` answers from a per-process read
model of every provider, reloaded when the database revision moves.
"""
from __future__ import annotations

import ctypes
import gc
import logging
import random
import threading
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace

from sqlalchemy import Connection

from stowage import errors
from stowage.candidates import fast, reference
from stowage.candidates.readmodel import ReadModel
from stowage.candidates.request import CandidateRequest, EngineOptions, RequestGroup
from stowage.candidates.results import CandidateResult
from stowage.candidates.snapshot import Snapshot
from stowage.storage.catalog import STANDARD_CLASSES, STANDARD_TRAITS
from stowage.storage.changes import (
    ChangesSince,
    LoadedTrees,
    changes_since,
    current_revision,
    load_trees,
)
from stowage.storage.providers import any_provider_in_aggregates, resource_class_ids, trait_ids
from stowage.storage.snapshot import load_snapshot

LOG = logging.getLogger(__name__)

REFERENCE_ENGINE = "reference"
FAST_ENGINE = "fast"


class ReadModelCache:
    """One process's read model, shared by its request threads.

    Refreshing patches the model in place or makes the next one (sharing
    its indexes) and swaps the reference (see ``ReadModel``); a full build
    happens only at start-up (or when the feed cannot tell what changed:
    catalog rows written before migration 0004). Refreshes are serialised under a
    lock so that threads arriving together apply the feed once, while
    requests on the model go on without it.
    """

    def __init__(self) -> None:
        self._model: ReadModel | None = None
        self._lock = threading.Lock()

    @property
    def latest(self) -> ReadModel | None:
        """The model as it is, unchecked (None before the first build)."""
        return self._model

    def current(self, connection: Connection) -> ReadModel:
        """A model at least as new as what ``connection``'s transaction sees.

        A thread whose transaction began just before another thread's
        refresh gets the newer model: fresher data, never older. With a
        model, one statement tells both whether it is behind and which
        trees changed (``changes_since``).
        """
        model = self._model
        after = model.revision if model is not None else None
        changes = changes_since(connection, after) if after is not None else None
        if model is not None and changes is not None and model.revision >= changes.revision:
            if model.holds_deleted and self._lock.acquire(blocking=False):
                # Deleted trees' entries, kept while older models answered.
                try:
                    if self._model is model:
                        model.release_deleted()
                finally:
                    self._lock.release()
            return model
        with self._lock:
            latest = self._model
            if latest is not None and (latest is not model or latest.revision != after):
                # Refreshed meanwhile (replaced, or patched in place): ask
                # again from where it is now, and never take it back to
                # the older revision this transaction may see.
                changes = changes_since(connection, latest.revision)
            if latest is not None and changes is not None and latest.revision >= changes.revision:
                return latest
            model = refreshed(connection, latest, changes)
            self._model = model
            # The model is long-lived and holds millions of objects: keep the
            # cyclic garbage collector from scanning them again and again
            # (each full pass over 100,000 providers costs about a second).
            # Reference counting still frees an old model once replaced.
            gc.freeze()
            return model


def _return_freed_memory() -> None:
    """Give back to the system what a full load allocated and freed: glibc
    keeps freed heap pages (the query results' buffers above all), about
    70 MiB after a load of 400,000 providers. Elsewhere, nothing."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return
    gc.collect()
    trim(0)


def refreshed(
    connection: Connection, model: ReadModel | None, changes: ChangesSince | None
) -> ReadModel:
    """``model`` brought to ``changes.revision``: only the trees the change
    feed names are reloaded, or everything when it cannot tell (or there
    is no model yet)."""
    if model is None or changes is None or changes.roots is None:
        revision = current_revision(connection) if changes is None else changes.revision
        started = time.monotonic()
        loaded = load_trees(connection, None)
        model = ReadModel.build(revision, loaded.snapshot, loaded.provider_ids)
        del loaded
        _return_freed_memory()
        LOG.info("Read model of %d providers built at revision %d in %.1f s",
                 model.provider_count, revision, time.monotonic() - started)
        return model
    roots, revision = changes.roots, changes.revision
    if not roots:
        loaded = LoadedTrees(Snapshot(()), {})
    else:
        loaded = load_trees(connection, roots)
    # In place when only the trees' contents changed (claims, inventory
    # updates: a few microseconds per tree); otherwise a new model sharing
    # this one's indexes, in time proportional to the changed trees too.
    if model.patch(revision, roots, loaded.snapshot):
        model.release_deleted()
        return model
    successor = model.with_trees(revision, roots, loaded.snapshot, loaded.provider_ids)
    if successor is None:
        LOG.warning("The change feed missed a tree at revision %d: reloading every tree", revision)
        return refreshed(connection, None, changes)
    return successor


class CandidateFinder:
    """Runs the configured engine; holds the fast engine's read model.

    With ``spread`` ([stowage] spread_limited_candidates), limited requests
    on the fast engine are answered from a cursor over the roots: each
    answer starts where the previous one of this process ended, the first
    at a random root, so concurrent schedulers are handed different trees.
    """

    def __init__(self, engine: str = REFERENCE_ENGINE, spread: bool = False) -> None:
        if engine not in (REFERENCE_ENGINE, FAST_ENGINE):
            raise ValueError(f"unknown candidate engine {engine!r}")
        self.engine = engine
        self.read_models = ReadModelCache()
        self.spread = spread
        # A root position; the engine takes it modulo the number of roots.
        self._cursor = random.randrange(1 << 30)

    def prepare(self, connection: Connection) -> None:
        """Build the fast engine's read model now rather than on the first
        request that needs it (on a large cloud that takes seconds)."""
        if self.engine == FAST_ENGINE:
            self.read_models.current(connection)

    def find(
        self, connection: Connection, request: CandidateRequest, options: EngineOptions
    ) -> CandidateResult:
        """Candidates for ``request``; 400 if it names an unknown class or trait
        that upstream would reach (see ``first_unknown_name``)."""
        unknown = first_unknown_name(connection, request)
        if unknown is not None:
            if self._empty_before(connection, request, unknown, options):
                return CandidateResult.empty()
            raise unknown.error
        return self._run(connection, request, options)

    def _run(
        self, connection: Connection, request: CandidateRequest, options: EngineOptions
    ) -> CandidateResult:
        if self.engine == FAST_ENGINE:
            model = self.read_models.current(connection)
            if not (self.spread and request.limit is not None and not options.randomize):
                return fast.find_candidates(model, request, options)
            result = fast.find_candidates(model, request, replace(options, start=self._cursor))
            if result.candidates:
                # The next answer begins after the last tree this one used;
                # threads racing here only make two answers start alike.
                last = model.root_positions.get(result.candidates[-1].anchor)
                if last is not None:
                    self._cursor = last + 1
            return result
        snapshot = load_snapshot(connection, request.resource_classes)
        return reference.find_candidates(snapshot, request, options)

    def _empty_before(
        self,
        connection: Connection,
        request: CandidateRequest,
        unknown: UnknownName,
        options: EngineOptions,
    ) -> bool:
        """Whether upstream's search ends empty before it reaches ``unknown``.

        Upstream takes the groups in turn and answers empty as soon as one
        matches nothing, so a later group's names are never looked up; within
        a group it looks up classes, then the providers in its ``member_of``,
        then traits.
        """
        group = unknown.group
        if group is None:
            return False
        if (
            unknown.is_trait
            and group.member_of
            and not any_provider_in_aggregates(connection, group.member_of)
        ):
            return True
        for earlier in request.groups[: request.groups.index(group)]:
            alone = CandidateRequest(groups=(earlier,), limit=1, nested_aware=request.nested_aware)
            if not self._run(connection, alone, replace(options, randomize=False)).candidates:
                return True
        return False


@dataclass(frozen=True)
class UnknownName:
    """A class or trait a request names that does not exist, and where.

    ``group`` is None for the request-wide root traits.
    """

    error: errors.BadRequest
    group: RequestGroup | None
    is_trait: bool


def find_candidates(
    connection: Connection,
    request: CandidateRequest,
    options: EngineOptions,
    finder: CandidateFinder | None = None,
) -> CandidateResult:
    """Candidates for ``request`` from ``finder``'s engine (the reference
    engine without one); 400 if it names an unknown class or trait."""
    return (finder or CandidateFinder()).find(connection, request, options)


def first_unknown_name(connection: Connection, request: CandidateRequest) -> UnknownName | None:
    """The first unknown name in upstream's order: root traits, then per
    group its classes, required and forbidden traits."""
    # Only custom names need a look in the database.
    classes, traits = request.resource_classes, request.trait_names
    known_classes = (classes & STANDARD_CLASSES).union(
        resource_class_ids(connection, classes - STANDARD_CLASSES)
    )
    known_traits = (traits & STANDARD_TRAITS).union(
        trait_ids(connection, traits - STANDARD_TRAITS)
    )
    error = _unknown_trait(sorted(request.root_required | request.root_forbidden), known_traits)
    if error:
        return UnknownName(error, None, is_trait=True)
    for group in request.groups:
        for resource_class in group.resource_classes:
            if resource_class not in known_classes:
                error = errors.BadRequest(
                    "Invalid resource class in resources parameter: "
                    f"No such resource class {resource_class}."
                )
                return UnknownName(error, group, is_trait=False)
        required = [name for any_of in group.required_traits for name in sorted(any_of)]
        error = _unknown_trait(required, known_traits) or _unknown_trait(
            sorted(group.forbidden_traits), known_traits
        )
        if error:
            return UnknownName(error, group, is_trait=True)
    return None


def _unknown_trait(names: Iterable[str], known: Collection[str]) -> errors.BadRequest | None:
    for name in names:
        if name not in known:
            return errors.BadRequest(f"No such trait(s): {name}.")
    return None
