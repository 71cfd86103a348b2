"""GET /stowage/allocation_candidates/explain: why nothing fits (or what does).

Takes exactly the query string of GET /allocation_candidates, at the same
microversions, validated and parsed the same way and under the same policy
rule (it tells the caller nothing the listing would not let them find out),
and answers the run's explanation instead of its candidates.
"""
from __future__ import annotations

from stowage.api import explanation
from stowage.api.handlers import allocation_candidates
from stowage.api.http import Request, Response


def explain_candidates(request: Request, services) -> Response:
    """The explanation of one allocation-candidates run; the body is
    ``explanation.explanation_body``'s."""
    candidate_request, result = allocation_candidates.find(request, services)
    return Response(body=explanation.explanation_body(result, candidate_request))
