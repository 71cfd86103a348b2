"""The allocation-candidate engine.

``request``    the immutable request model (groups, request-wide options)
``snapshot``   the providers in play, as storage loads them
``reference``  the reference engine: pure, exhaustive stage functions
``results``    candidates, provider summaries and the explanation
``attribution`` why a tree has no candidate: the order both engines rule
               trees out in, and the bounded tallies they count with

The API parses the query string into a request; ``stowage.domain.candidates``
loads a snapshot and runs an engine over it.
"""
