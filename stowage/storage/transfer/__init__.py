"""Moving Placement data between databases: ``stowage db import``, ``export`` and ``copy``.

One engine serves the three commands; they differ only in their ends::

    import   upstream Placement 16.0.0 database  →  Stowage's database
    export   Stowage's database                  →  upstream Placement 16.0.0 database
    copy     Stowage database (any backend)      →  Stowage database (any backend)

Modules, in the order a run uses them:

- ``tables``: the tables moved, their keys and unique values, the
  canonical row both schemas are read into;
- ``layouts``: where those tables live in Stowage's schema and in upstream's
  (``upstream_schema``), and how rows are read and written there;
- ``endpoints``: a URL opened and identified (which kind of database, which
  revision), with snapshots and write transactions;
- ``sync``: the run itself, batch by batch (``transfer``);
- ``verify``: counts and checksums of both sides;
- ``imports``: what an import remembers, so that a later one does not
  discard writes Stowage took in between.
"""
from stowage.storage.transfer.endpoints import (
    Endpoint,
    StowageEndpoint,
    UpstreamEndpoint,
    describe,
    open_stowage,
    open_upstream,
    same_database,
)
from stowage.storage.transfer.errors import (
    ImportWouldDiscardWrites,
    TargetHasOtherData,
    TransferError,
    UnusableDatabase,
)
from stowage.storage.transfer.imports import (
    record_import_finished,
    record_import_started,
    writes_an_import_would_discard,
)
from stowage.storage.transfer.sync import DEFAULT_BATCH_SIZE, Options, Progress, Report, transfer
from stowage.storage.transfer.verify import TableCheck

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "Endpoint",
    "ImportWouldDiscardWrites",
    "Options",
    "Progress",
    "Report",
    "StowageEndpoint",
    "TableCheck",
    "TargetHasOtherData",
    "TransferError",
    "UnusableDatabase",
    "UpstreamEndpoint",
    "describe",
    "open_stowage",
    "open_upstream",
    "record_import_finished",
    "record_import_started",
    "same_database",
    "transfer",
    "writes_an_import_would_discard",
]
