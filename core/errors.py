"""The one family of errors a user can act on: each says what is wrong and what to do.

Every error class in modescope derives from ``ModescopeError``. A class carries how each front
door reports it: ``status`` and ``title`` for the web app (one handler renders any error of the
family as an HTML page or ``{"error": title, "detail": message}``: app/errors.py) and
``exit_code`` for the CLI (``modescope: error: <message>`` on one line: cli/main.py). Core
knows nothing of HTTP, so the status is a plain number.

Raise the subclass that says what kind of problem it is, and the message says the rest:

- ``InputError`` (400): what was asked cannot be done as asked (a name, a number, a folder).
- ``NotFound`` (404): what was named does not exist (a run, an image, an experiment).
- ``Conflict`` (409): not possible in the workspace's present state (not indexed yet, a job
  already running, a name taken).
- ``WorkspaceError`` (503): the workspace is missing, unreadable, locked or was made with other
  settings.
"""

from __future__ import annotations

from typing import ClassVar


class ModescopeError(Exception):
    """An error with a one-line message for the user; the CLI prints it without a traceback
    and the app answers ``status`` with the message as the detail."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Something went wrong"
    exit_code: ClassVar[int] = 2

    @property
    def detail(self) -> str:
        """The message: what is wrong and what to do."""
        return str(self)


class InputError(ModescopeError):
    """A command's or a request's input (a folder, a name, a number) cannot be used."""

    status = 400
    title = "Bad request"


class NotFound(ModescopeError):
    """What the request names (a run, an image, a sample, an experiment) does not exist."""

    status = 404
    title = "Not found"


class Conflict(ModescopeError):
    """Not possible in the workspace's present state; the message says what to do first."""

    status = 409
    title = "Not possible yet"


class WorkspaceError(ModescopeError):
    """The workspace folder is missing, unreadable, locked or was made with other settings."""

    status = 503
    title = "Workspace not ready"
