"""The base of every error the user can fix: the CLI prints it as one line and exits 2."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or environment, one line, safe to print (no secrets).

    Declared at the bottom layer so the entry point can catch every kind (configuration,
    audio, results directory) without importing the layers that raise them.
    """

    #: The run was measured but not all of it written (disk full): exit 5, not 2.
    incomplete = False
