"""Errors that a user can act on: each says what is wrong and what to do."""

from __future__ import annotations


class ModescopeError(Exception):
    """An error with a one-line message for the user; the CLI prints it without a traceback."""

    exit_code = 2


class WorkspaceError(ModescopeError):
    """The workspace folder is missing, unreadable, locked or was made with other settings."""


class InputError(ModescopeError):
    """A command's input (a folder, a number) cannot be used."""
