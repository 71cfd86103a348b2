"""The immutable request model of GET /allocation_candidates.

The API layer parses the query string into a ``CandidateRequest`` once; the
engines only ever see this model, never the query string or the microversion.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class GroupPolicy(Enum):
    """How numbered (suffixed) request groups may share providers."""

    NONE = "none"  # groups may land on the same provider
    ISOLATE = "isolate"  # every suffixed group lands on a different provider


class GenerationStrategy(Enum):
    """The order in which anchors (root providers) yield combinations.

    Only matters when ``max_candidates`` cuts generation short.
    """

    DEPTH_FIRST = "depth-first"  # every candidate of one anchor, then the next
    BREADTH_FIRST = "breadth-first"  # one candidate per anchor, round robin


@dataclass(frozen=True)
class RequestGroup:
    """One request group: ``resources``/``required``/``member_of``/``in_tree``
    sharing a suffix.

    The unsuffixed group (``suffix == ""``) may spread its resources over
    several providers of one tree plus sharing providers; a suffixed group
    must be satisfied by a single provider.

    ``required_traits`` is a conjunction of disjunctions: every set must have
    at least one member present (a plain required trait is a set of one).
    ``member_of`` is the same shape over aggregate uuids. A group without
    resources (1.36+) only picks a provider, for ``same_subtree``.
    """

    suffix: str = ""
    resources: tuple[tuple[str, int], ...] = ()
    required_traits: tuple[frozenset[str], ...] = ()
    forbidden_traits: frozenset[str] = frozenset()
    member_of: tuple[frozenset[str], ...] = ()
    forbidden_aggregates: frozenset[str] = frozenset()
    in_tree: str | None = None

    @property
    def single_provider(self) -> bool:
        """Suffixed groups are satisfied by exactly one provider."""
        return self.suffix != ""

    @property
    def resource_classes(self) -> tuple[str, ...]:
        return tuple(resource_class for resource_class, _amount in self.resources)

    @property
    def trait_names(self) -> set[str]:
        """Every trait the group names, required or forbidden."""
        return set().union(*self.required_traits, self.forbidden_traits)


@dataclass(frozen=True)
class CandidateRequest:
    """Everything one GET /allocation_candidates asks for.

    ``root_required``/``root_forbidden`` (1.35) constrain the root of each
    candidate's anchor tree. ``same_subtrees`` (1.36) lists sets of suffixes
    whose chosen providers must all descend from one of them.
    ``nested_aware`` is False before 1.29: candidates taking resources from
    two providers of one tree are then dropped.
    """

    groups: tuple[RequestGroup, ...]
    group_policy: GroupPolicy | None = None
    limit: int | None = None
    root_required: frozenset[str] = frozenset()
    root_forbidden: frozenset[str] = frozenset()
    same_subtrees: tuple[frozenset[str], ...] = ()
    nested_aware: bool = True

    @property
    def resource_classes(self) -> set[str]:
        """Every resource class any group requests."""
        return {name for group in self.groups for name in group.resource_classes}

    @property
    def trait_names(self) -> set[str]:
        return set().union(*(group.trait_names for group in self.groups)) | set(
            self.root_required | self.root_forbidden
        )


@dataclass(frozen=True)
class EngineOptions:
    """Operator settings that shape the output, not the matching.

    ``max_candidates`` (-1 for no bound) caps how many distinct candidates are
    generated before ``limit`` applies; ``randomize`` shuffles (or samples,
    with a limit) the result; ``seed`` makes that shuffle reproducible.
    ``start`` (fast engine, limited and not randomised requests) is where
    the scan of the roots begins, wrapping around: the answer is then the
    first ``limit`` candidates from there instead of from the first root.
    """

    randomize: bool = False
    seed: int | None = None
    max_candidates: int = -1
    strategy: GenerationStrategy = GenerationStrategy.DEPTH_FIRST
    start: int = 0
