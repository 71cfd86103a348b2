"""``stowage explain``: why an allocation-candidates query finds nothing,
read from the configured database directly.

The query string is the one GET /allocation_candidates takes, validated and
parsed by the same schemas at the microversion given; the engine is the one
``[stowage] candidate_engine`` names, run once in this process.
"""
from __future__ import annotations

import sys

from oslo_config import cfg

from stowage import errors
from stowage.api import explanation
from stowage.api.handlers.allocation_candidates import engine_options
from stowage.api.http import Request
from stowage.api.schemas import allocation_candidates as schemas
from stowage.api.schemas import validate_query
from stowage.api.versions import Version
from stowage.domain import candidates
from stowage.storage.database import Database


def parse_query(query: str, version: Version):
    """The ``CandidateRequest`` of ``query`` at ``version``; ``BadRequest``
    with /allocation_candidates' own wording when it is not valid."""
    request = Request(
        {"REQUEST_METHOD": "GET", "PATH_INFO": "/allocation_candidates",
         "QUERY_STRING": query.removeprefix("?")},
        request_id="stowage-explain",
    )
    request.version = version
    validate_query(request, schemas.query_schema(version))
    return schemas.parse_request(request)


def explain_command(conf: cfg.ConfigOpts, query: str, version: Version) -> int:
    """Print the summary and nearest misses; exit status 0 when something
    fits, 1 when nothing does, 2 for a query /allocation_candidates refuses."""
    try:
        request = parse_query(query, version)
    except errors.BadRequest as error:
        print(f"stowage explain: {error.detail}", file=sys.stderr)
        return 2
    database = Database.from_conf(conf)
    finder = candidates.CandidateFinder(conf.stowage.candidate_engine)
    try:
        with database.read(consistent=True) as connection:
            result = candidates.find_candidates(
                connection, request, engine_options(conf), finder=finder
            )
    except errors.BadRequest as error:
        print(f"stowage explain: {error.detail}", file=sys.stderr)
        return 2
    finally:
        database.dispose()
    sys.stdout.write(explanation.terminal_text(result, request))
    return 0 if result.candidates else 1
