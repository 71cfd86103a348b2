"""Parsers for the filter parameters shared by provider listings and
allocation candidates: ``member_of``, ``required``, ``resources``, ``in_tree``.

Each takes the raw values of one parameter (``suffix`` names a numbered or
named request group, e.g. ``member_of1``) and returns a frozen value from
``stowage.domain.filters``, or raises ``BadRequest`` worded as upstream.
"""
from __future__ import annotations

from stowage import errors
from stowage.api import versions as v
from stowage.api.schemas import is_uuid
from stowage.api.versions import Version
from stowage.domain.filters import AggregateFilter, ResourceAmount, TraitFilter

_RESOURCES_FORM = (
    "Badly formed resources parameter. Expected resources query string "
    "parameter in form: ?resources=VCPU:2,MEMORY_MB:1024."
)


def parse_member_of(values: list[str], version: Version, suffix: str = "") -> AggregateFilter:
    """``member_of``: ``UUID``, ``in:UUID,UUID`` or, from 1.32, ``!UUID`` and
    ``!in:UUID,UUID``. Repeating the parameter (ANDed) needs 1.24.
    """
    name = "member_of" + suffix
    if len(values) > 1 and version < v.MULTI_MEMBER_OF:
        raise errors.BadRequest(f"Multiple {name} parameters are not supported")
    any_of: list[frozenset[str]] = []
    forbidden: set[str] = set()
    for value in values:
        negated = value.startswith("!")
        body = value[1:] if negated else value
        if body.startswith("in:"):
            uuids = body[3:].split(",")
        elif "," in value:
            raise errors.BadRequest(
                f"Multiple values for 'member_of' must be prefixed with the 'in:' or '!in:' "
                f"keyword using the valid microversion. Got: {value}"
            )
        else:
            uuids = [body]
        for uuid in uuids:
            if not is_uuid(uuid):
                raise errors.BadRequest(
                    "Invalid query string parameters: Expected 'member_of' parameter "
                    f"to contain valid UUID(s). Got: {uuid}"
                )
        if negated:
            if version < v.FORBIDDEN_AGGREGATES:
                raise errors.BadRequest(
                    f"Forbidden {name} parameters are not supported in the specified "
                    "microversion"
                )
            forbidden.update(uuids)
        else:
            any_of.append(frozenset(uuids))
    return AggregateFilter(any_of=tuple(any_of), forbidden=frozenset(forbidden))


def parse_required(values: list[str], version: Version) -> TraitFilter:
    """``required``: ``A,B`` (all of), ``!C`` forbidden from 1.22, and from
    1.39 ``in:A,B`` (any of) with the parameter repeatable (ANDed).

    Before 1.39 only the last of repeated parameters counts, as upstream.
    """
    if version < v.ANY_TRAITS:
        values = values[-1:]
    allow_forbidden = version >= v.FORBIDDEN_TRAITS
    any_of: list[frozenset[str]] = []
    forbidden: set[str] = set()
    for value in values:
        if value.startswith("in:"):
            any_of.append(_parse_any_traits(value, version))
            continue
        names = [part.strip() for part in value.split(",")]
        # Any run of leading '!' marks a forbidden trait (upstream's lstrip).
        negated = {name.lstrip("!") for name in names if name.startswith("!")}
        if not all(names) or not all(negated):
            form = "HW_CPU_X86_VMX,CUSTOM_MAGIC"
            if allow_forbidden:
                form = "HW_CPU_X86_VMX,!CUSTOM_MAGIC"
            raise errors.BadRequest(
                "Invalid query string parameters: Expected 'required' parameter value "
                f"of the form: {form}. Got an empty trait in: {value}"
            )
        if negated and not allow_forbidden:
            raise errors.BadRequest(
                "Invalid query string parameters: Expected 'required' parameter value "
                f"of the form: HW_CPU_X86_VMX,CUSTOM_MAGIC. Got: {value}"
            )
        any_of.extend(frozenset([name]) for name in names if not name.startswith("!"))
        forbidden |= negated
    return TraitFilter(any_of=tuple(any_of), forbidden=frozenset(forbidden))


def _parse_any_traits(value: str, version: Version) -> frozenset[str]:
    if version < v.ANY_TRAITS:
        raise errors.BadRequest(
            "Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' "
            f"only supported since microversion 1.39. Got: {value}"
        )
    names = frozenset(part.strip() for part in value[3:].split(","))
    if not all(names):
        raise errors.BadRequest(
            "Invalid query string parameters: Expected 'required' parameter value of "
            f"the form: in:HW_CPU_X86_VMX,CUSTOM_MAGIC. Got an empty trait in: {value}"
        )
    if any(name.startswith("!") for name in names):
        raise errors.BadRequest(
            "Invalid query string parameters: The format 'in:HW_CPU_X86_VMX,CUSTOM_MAGIC' "
            f"does not support forbidden traits. Got: {value}"
        )
    return names


def parse_resources(value: str) -> tuple[ResourceAmount, ...]:
    """``resources=CLASS:amount,CLASS:amount``; amounts are integers >= 1.

    A class named twice keeps its last amount, as upstream.
    """
    if not value.strip():
        raise errors.BadRequest(f"{_RESOURCES_FORM} Got: empty string.")
    amounts: dict[str, int] = {}
    for item in value.split(","):
        parts = item.split(":")
        if len(parts) != 2:
            raise errors.BadRequest(f"{_RESOURCES_FORM} Got: {item}.")
        resource_class, text = parts
        try:
            amount = int(text)
        except ValueError:
            raise errors.BadRequest(
                f"Requested resource {resource_class} expected positive integer amount. "
                f"Got: {text}."
            ) from None
        if amount < 1:
            raise errors.BadRequest(
                f"Requested resource {resource_class} requires amount >= 1. Got: {amount}."
            )
        amounts[resource_class] = amount
    return tuple(ResourceAmount(name, amount) for name, amount in amounts.items())


def parse_in_tree(value: str, name: str = "in_tree") -> str:
    """A provider uuid (surrounding blanks ignored)."""
    stripped = value.strip()
    if not is_uuid(stripped):
        raise errors.BadRequest(
            f"Invalid query string parameters: Expected '{name}' parameter to be a "
            f"format of uuid. Got: {value}"
        )
    return stripped
