"""Every Placement microversion, one line each: this module is the changelog.

Handlers compare ``request.version`` against these named constants.
"""
from __future__ import annotations

from typing import NamedTuple


class Version(NamedTuple):
    major: int
    minor: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    @classmethod
    def parse(cls, text: str) -> Version:
        major, minor = text.split(".")
        if not (major.isdigit() and minor.isdigit()):
            raise ValueError(text)
        return cls(int(major), int(minor))


BASE = Version(1, 0)  # initial API
PROVIDER_AGGREGATES = Version(1, 1)  # GET/PUT /resource_providers/{uuid}/aggregates
CUSTOM_RESOURCE_CLASSES = Version(1, 2)  # /resource_classes
MEMBER_OF = Version(1, 3)  # ?member_of= on GET /resource_providers
RESOURCES_FILTER = Version(1, 4)  # ?resources= on GET /resource_providers
DELETE_ALL_INVENTORY = Version(1, 5)  # DELETE /resource_providers/{uuid}/inventories
TRAITS = Version(1, 6)  # /traits and /resource_providers/{uuid}/traits
IDEMPOTENT_PUT_RESOURCE_CLASS = Version(1, 7)  # bodiless PUT /resource_classes/{name}
REQUIRE_PROJECT_USER = Version(1, 8)  # project_id, user_id required in PUT /allocations
USAGES = Version(1, 9)  # GET /usages
ALLOCATION_CANDIDATES = Version(1, 10)  # GET /allocation_candidates
PROVIDER_ALLOCATIONS_LINK = Version(1, 11)  # 'allocations' link on providers
ALLOCATIONS_DICT = Version(1, 12)  # dict form of PUT/GET /allocations/{consumer}
POST_ALLOCATIONS = Version(1, 13)  # POST /allocations, many consumers at once
NESTED_PROVIDERS = Version(1, 14)  # parent/root provider uuids, ?in_tree=
CACHE_HEADERS = Version(1, 15)  # last-modified and cache-control
CANDIDATES_LIMIT = Version(1, 16)  # ?limit= on GET /allocation_candidates
CANDIDATES_REQUIRED = Version(1, 17)  # ?required= on candidates, traits in summaries
PROVIDERS_REQUIRED = Version(1, 18)  # ?required= on GET /resource_providers
AGGREGATE_GENERATION = Version(1, 19)  # generations in provider aggregates API
CREATE_RETURNS_BODY = Version(1, 20)  # POST /resource_providers returns 200 + body
CANDIDATES_MEMBER_OF = Version(1, 21)  # ?member_of= on GET /allocation_candidates
FORBIDDEN_TRAITS = Version(1, 22)  # !TRAIT in required
ERROR_CODES = Version(1, 23)  # 'code' in JSON error bodies
MULTI_MEMBER_OF = Version(1, 24)  # repeated ?member_of= on GET /resource_providers
GRANULAR = Version(1, 25)  # numbered request groups
RESERVED_EQUALS_TOTAL = Version(1, 26)  # inventory reserved may equal total
ALL_INVENTORY_IN_SUMMARIES = Version(1, 27)  # every class in provider_summaries
CONSUMER_GENERATION = Version(1, 28)  # consumer generations
NESTED_CANDIDATES = Version(1, 29)  # nested providers in allocation candidates
RESHAPER = Version(1, 30)  # POST /reshaper
CANDIDATES_IN_TREE = Version(1, 31)  # ?in_tree= on GET /allocation_candidates
FORBIDDEN_AGGREGATES = Version(1, 32)  # member_of=!...
STRING_SUFFIXES = Version(1, 33)  # request group suffixes [A-Za-z0-9_-]{1,64}
MAPPINGS = Version(1, 34)  # 'mappings' in allocation requests
ROOT_REQUIRED = Version(1, 35)  # ?root_required=
SAME_SUBTREE = Version(1, 36)  # ?same_subtree=, resourceless groups
REPARENT = Version(1, 37)  # re-parent and un-parent providers
CONSUMER_TYPES = Version(1, 38)  # consumer_type in allocations, usages, reshaper
ANY_TRAITS = Version(1, 39)  # required=in:A,B

MIN_VERSION = BASE
MAX_VERSION = ANY_TRAITS
