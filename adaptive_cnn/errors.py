"""Domain errors of acnn.

Every error a user can cause (a missing dataset, a malformed architecture string, a bad
config value) is an :class:`AcnnError` whose message says what to do; the CLI prints it
as one line on stderr and exits non-zero, never with a traceback.
"""

from __future__ import annotations


class AcnnError(Exception):
    """Base class for errors a user can act on."""


class ConfigError(AcnnError):
    """A configuration value or file is invalid (unknown key, wrong unit, bad range)."""


class DatasetNotFoundError(AcnnError):
    """A dataset's files are not where they were looked for."""


class DatasetFormatError(AcnnError):
    """A dataset's files exist but are corrupt or not in the expected format."""


class ArchitectureError(AcnnError):
    """An architecture string, family name or encoding is invalid."""


class CacheError(AcnnError):
    """The training cache cannot be used (unwritable folder, foreign entry)."""


class RunFolderError(AcnnError):
    """A design run folder is missing, incomplete or malformed (the message names the file)."""
