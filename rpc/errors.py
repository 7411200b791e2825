"""Domain errors of the runtime: the CLI prints them as one line and exits non-zero."""

from __future__ import annotations

from adaptive_cnn.errors import AcnnError, RunFolderError

__all__ = ["InputFileError", "RunFolderError", "ServerConfigError"]


class InputFileError(AcnnError):
    """An input file for ``acnn classify`` cannot be read or has the wrong shape."""


class ServerConfigError(AcnnError):
    """A server setting (TLS files, token file, limits) is unusable."""
