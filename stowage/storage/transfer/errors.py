"""Why a transfer refuses to start or cannot go on: messages for an operator.

::

    TransferError                 anything that stops a transfer, said in one line
    ├── UnusableDatabase          a URL that cannot be opened, or names the wrong kind of database
    ├── TargetHasOtherData        db copy: the target holds rows the source does not
    └── ImportWouldDiscardWrites  db import: Stowage took writes since the last import
"""
from __future__ import annotations


class TransferError(Exception):
    """A transfer cannot start or go on; the message says why and what to do."""


class UnusableDatabase(TransferError):
    """The URL cannot be opened, or names a database of the wrong kind or revision."""


class TargetHasOtherData(TransferError):
    """The target holds rows that differ from the source's: a copy would overwrite them."""


class ImportWouldDiscardWrites(TransferError):
    """Stowage's database holds writes no import brought in; mirroring upstream would drop them."""
