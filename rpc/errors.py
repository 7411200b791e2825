"""Domain errors of the runtime: the CLI prints them as one line and exits non-zero."""

from __future__ import annotations

from adaptive_cnn.errors import AcnnError, RunFolderError

__all__ = [
    "CloudAddressError",
    "CloudModelError",
    "InputFileError",
    "RunFolderError",
    "ServerConfigError",
]


class CloudAddressError(AcnnError):
    """The cloud's address (``--cloud``) is not ``HOST:PORT`` with a port in 1..65535."""


class CloudModelError(AcnnError):
    """The cloud's server answered, but serves no model of the name asked for."""


class InputFileError(AcnnError):
    """An input file for ``acnn classify`` cannot be read or has the wrong shape."""


class ServerConfigError(AcnnError):
    """A server setting (TLS files, token file, limits) is unusable."""
