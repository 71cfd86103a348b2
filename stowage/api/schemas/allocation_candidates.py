"""GET /allocation_candidates: the query schema per microversion, and the
parsing of the query string into a ``CandidateRequest``.

The per-parameter parsers (``resources``, ``required``, ``member_of``,
``in_tree``) are shared with GET /resource_providers in ``query``; request
group assembly and the request-wide options live here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from stowage import errors
from stowage.api import versions as v
from stowage.api.http import Request
from stowage.api.schemas import by_version, validate_value
from stowage.api.schemas import query as parsers
from stowage.api.versions import Version
from stowage.candidates.request import CandidateRequest, GroupPolicy, RequestGroup

# Request group suffixes: numbers from 1.25, then [A-Za-z0-9_-]{1,64} from 1.33.
NUMBERED_SUFFIX = r"[1-9][0-9]*"
STRING_SUFFIX = r"[a-zA-Z0-9_-]{1,64}"
_GROUP_PARAMETERS = ("resources", "required", "member_of", "in_tree")

# root_required predates 1.39's any-of syntax and never accepts it.
_ROOT_REQUIRED_SYNTAX = Version(1, 38)


def _query_schema(version: Version) -> dict:
    """The JSON schema of the (last-valued) query parameters at ``version``.

    Key order and the odd one-element type lists are upstream's, which its
    messages print.
    """
    granular = version >= v.GRANULAR
    properties: dict[str, dict] = {}
    if not granular:
        properties["resources"] = {"type": "string"}
    if version >= v.CANDIDATES_LIMIT:
        # Always a string in a query; an integer is accepted all the same.
        properties["limit"] = {
            "type": ["integer", "string"],
            "pattern": "^[1-9][0-9]*$",
            "minimum": 1,
            "minLength": 1,
        }
    if granular:
        properties["group_policy"] = {"type": "string", "enum": ["none", "isolate"]}
    else:
        if version >= v.CANDIDATES_REQUIRED:
            properties["required"] = {"type": ["string"]}
        if version >= v.CANDIDATES_MEMBER_OF:
            properties["member_of"] = {"type": ["string"]}
    if version >= v.ROOT_REQUIRED:
        properties["root_required"] = {"type": ["string"]}
    if version >= v.SAME_SUBTREE:
        properties["same_subtree"] = {"type": ["string"]}
    schema: dict = {"type": "object", "properties": properties}
    if not granular:
        schema["required"] = ["resources"]
    schema["additionalProperties"] = False
    if granular:
        suffix = STRING_SUFFIX if version >= v.STRING_SUFFIXES else NUMBERED_SUFFIX
        names = ["resources", "required", "member_of"]
        if version >= v.CANDIDATES_IN_TREE:
            names.append("in_tree")
        schema["patternProperties"] = {f"^{name}({suffix})?$": {"type": "string"} for name in names}
    return schema


# Newest first: every microversion at which the query schema changes. One
# object per shape, since validators are cached per schema.
QUERY_SCHEMAS = tuple(
    (since, _query_schema(since))
    for since in (
        v.SAME_SUBTREE,
        v.ROOT_REQUIRED,
        v.STRING_SUFFIXES,
        v.CANDIDATES_IN_TREE,
        v.GRANULAR,
        v.CANDIDATES_MEMBER_OF,
        v.CANDIDATES_REQUIRED,
        v.CANDIDATES_LIMIT,
        v.ALLOCATION_CANDIDATES,
    )
)


def query_schema(version: Version) -> dict:
    """The query schema of GET /allocation_candidates (1.10+) at ``version``."""
    return by_version(QUERY_SCHEMAS, version)


@dataclass
class _GroupDraft:
    """A request group while its parameters are being read."""

    suffix: str
    resources: tuple = ()
    required_traits: tuple = ()
    forbidden_traits: frozenset = frozenset()
    member_of: tuple = ()
    forbidden_aggregates: frozenset = frozenset()
    in_tree: str | None = None
    keys: list[str] = field(default_factory=list)

    def freeze(self) -> RequestGroup:
        return RequestGroup(
            suffix=self.suffix,
            resources=tuple((item.resource_class, item.amount) for item in self.resources),
            required_traits=self.required_traits,
            forbidden_traits=self.forbidden_traits,
            member_of=self.member_of,
            forbidden_aggregates=self.forbidden_aggregates,
            in_tree=self.in_tree,
        )


def parse_request(request: Request) -> CandidateRequest:
    """The query string (already schema-checked) as a ``CandidateRequest``.

    Raises ``BadRequest`` with upstream's wording for malformed values and
    inconsistent groups.
    """
    version = request.version
    query = request.query
    # Repeated limit and group_policy: the first one counts, as upstream,
    # whose schema checks only the last (a bad first one is its 500); the
    # first is held to the same schema here.
    first: dict[str, str] = {
        name: query[name][0] for name in ("limit", "group_policy") if name in query
    }
    properties = query_schema(version)["properties"]
    for name, value in first.items():
        validate_value(value, properties[name])
    limit = int(first["limit"]) if "limit" in first else None
    policy = GroupPolicy(first["group_policy"]) if "group_policy" in first else None
    root_required, root_forbidden = _root_traits(query.get("root_required", []), version)
    same_subtrees = _same_subtrees(query.get("same_subtree", []))
    drafts = _group_drafts(query, version)
    groups = [draft.freeze() for draft in drafts.values()]
    if version >= v.SAME_SUBTREE:
        _check_resourceless_groups(groups, same_subtrees)
    else:
        _check_orphans(groups)
    if version >= v.FORBIDDEN_TRAITS:
        _check_conflicts(groups)
    if policy is None and sum(1 for group in groups if group.single_provider) > 1:
        raise errors.BadRequest(
            'The "group_policy" parameter is required when specifying more than one '
            '"resources{N}" parameter.'
        )
    return CandidateRequest(
        groups=tuple(groups),
        group_policy=policy,
        limit=limit,
        root_required=root_required,
        root_forbidden=root_forbidden,
        same_subtrees=same_subtrees,
        nested_aware=version >= v.NESTED_CANDIDATES,
    )


def _group_drafts(query: dict[str, list[str]], version: Version) -> dict[str, _GroupDraft]:
    """Groups by suffix, in the order their parameters first appear."""
    suffix_pattern = STRING_SUFFIX if version >= v.STRING_SUFFIXES else NUMBERED_SUFFIX
    if version < v.GRANULAR:
        suffix_pattern = "(?!)"  # matches nothing: only the unsuffixed group
    key_pattern = re.compile(rf"^({'|'.join(_GROUP_PARAMETERS)})({suffix_pattern})?$")
    drafts: dict[str, _GroupDraft] = {}
    for key, values in query.items():
        found = key_pattern.match(key)
        if not found:
            continue
        parameter, suffix = found.group(1), found.group(2) or ""
        draft = drafts.setdefault(suffix, _GroupDraft(suffix))
        if parameter == "resources":
            for value in values:
                draft.resources = parsers.parse_resources(value)
        elif parameter == "required":
            traits = parsers.parse_required(values, version)
            draft.required_traits, draft.forbidden_traits = traits.any_of, traits.forbidden
        elif parameter == "member_of":
            aggregates = parsers.parse_member_of(values, version, suffix)
            draft.member_of, draft.forbidden_aggregates = aggregates.any_of, aggregates.forbidden
        else:
            for value in values:
                draft.in_tree = parsers.parse_in_tree(value)
    return drafts


def _root_traits(values: list[str], version: Version) -> tuple[frozenset[str], frozenset[str]]:
    """``root_required`` (1.35): once only, ``A,!B``, no ``in:``."""
    if not values:
        return frozenset(), frozenset()
    if len(values) > 1:
        raise errors.BadRequest(
            "Query parameter 'root_required' may be specified only once.",
            code=errors.ILLEGAL_DUPLICATE_QUERYPARAM,
        )
    traits = parsers.parse_required(values, min(version, _ROOT_REQUIRED_SYNTAX))
    required = frozenset().union(*traits.any_of)
    conflicts = required & traits.forbidden
    if conflicts:
        raise errors.BadRequest(
            "Conflicting required and forbidden traits found in root_required: "
            + ", ".join(sorted(conflicts)),
            code=errors.QUERYPARAM_BAD_VALUE,
        )
    return required, traits.forbidden


def _same_subtrees(values: list[str]) -> tuple[frozenset[str], ...]:
    """``same_subtree`` (1.36): comma-separated suffixes, each repeat a set."""
    subtrees = []
    for value in values:
        suffixes = frozenset(part.strip() for part in value.split(","))
        if "" in suffixes:
            raise errors.BadRequest(
                "Empty string (unsuffixed group) can not be specified in `same_subtree` ",
                code=errors.QUERYPARAM_BAD_VALUE,
            )
        subtrees.append(suffixes)
    return tuple(subtrees)


def _check_resourceless_groups(
    groups: list[RequestGroup], same_subtrees: tuple[frozenset[str], ...]
) -> None:
    """From 1.36 groups may lack resources if they are in a same_subtree."""
    resourceless = [group.suffix for group in groups if not group.resources]
    if len(resourceless) == len(groups):
        raise errors.BadRequest(
            "There must be at least one resources or resources[$S] parameter.",
            code=errors.QUERYPARAM_MISSING_VALUE,
        )
    in_subtrees = set().union(*same_subtrees)
    bad = [suffix for suffix in resourceless if suffix not in in_subtrees]
    if bad:
        raise errors.BadRequest(
            "Resourceless suffixed group request should be specified in `same_subtree` "
            f"query param: bad group(s) - {bad}.",
            code=errors.QUERYPARAM_BAD_VALUE,
        )
    suffixes = [group.suffix for group in groups]
    unknown = sorted(suffix for suffix in in_subtrees if suffix not in suffixes)
    if unknown:
        raise errors.BadRequest(
            f"Real suffixes should be specified in `same_subtree`: {unknown} not found in "
            f"{suffixes}.",
            code=errors.QUERYPARAM_BAD_VALUE,
        )


def _check_orphans(groups: list[RequestGroup]) -> None:
    """Before 1.36 every group needs resources; say which keys are orphaned."""
    orphans = [
        f"required{group.suffix}"
        for group in groups
        if group.required_traits and not group.resources
    ]
    if orphans:
        raise errors.BadRequest(
            "All traits parameters must be associated with resources.  Found the following "
            f"orphaned traits keys: {', '.join(orphans)}"
        )
    orphans = [
        f"member_of{group.suffix}"
        for group in groups
        if not group.resources and (group.member_of or group.forbidden_aggregates)
    ]
    if orphans:
        raise errors.BadRequest(
            "All member_of parameters must be associated with resources. Found the following "
            f"orphaned member_of keys: {', '.join(orphans)}"
        )
    if not all(group.resources for group in groups):
        raise errors.BadRequest("All request groups must specify resources.")
    if not groups:
        raise errors.BadRequest(
            "At least one request group (`resources` or `resources{$S}`) is required."
        )


def _check_conflicts(groups: list[RequestGroup]) -> None:
    """A required any-of set made only of forbidden traits can never match."""
    conflicts = sorted(
        f"required{group.suffix}: ({', '.join(sorted(any_of))})"
        for group in groups
        for any_of in group.required_traits
        if any_of <= group.forbidden_traits
    )
    if conflicts:
        raise errors.BadRequest(
            "Conflicting required and forbidden traits found in the following traits keys: "
            + ", ".join(conflicts)
        )
