"""Domain errors. Each carries the exit code documented in README and INTERFACE.md.

The library raises these with a one-line message; only ``cli.py`` turns them into an exit.
"""

from __future__ import annotations

from enum import IntEnum, unique


@unique
class ExitCode(IntEnum):
    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    SOURCE_FAILED = 3
    DELIVERY_FAILED = 4
    STATE = 5
    INTERRUPTED = 130
    TERMINATED = 143


# When several outcomes apply to one run, the first in this order wins.
EXIT_PRECEDENCE = (ExitCode.STATE, ExitCode.USAGE, ExitCode.SOURCE_FAILED, ExitCode.DELIVERY_FAILED)


def worst_exit_code(codes: list[ExitCode]) -> ExitCode:
    for code in EXIT_PRECEDENCE:
        if code in codes:
            return code
    return ExitCode.OK


class TriageError(Exception):
    """Base of every error that ends a command with a one-line message."""

    exit_code = ExitCode.UNEXPECTED


class UsageError(TriageError):
    """A bad flag, time, duration or missing input file."""

    exit_code = ExitCode.USAGE


class ConfigError(TriageError):
    """A configuration value is invalid; the message names the field and where it came from."""

    exit_code = ExitCode.USAGE


class SourceError(TriageError):
    """A source could not deliver its entries (network, server error, unpageable burst)."""

    exit_code = ExitCode.SOURCE_FAILED


class LokiQueryError(TriageError):
    """Loki rejected the query itself (HTTP 4xx): the user's LogQL, limits or credentials."""

    exit_code = ExitCode.USAGE


class StateError(TriageError):
    """The state file is unreadable, corrupt, from a newer version, or not writable."""

    exit_code = ExitCode.STATE


class StateLockedError(StateError):
    """Another run holds the state lock."""


class Interrupted(TriageError):
    """SIGINT or SIGTERM arrived; the run stopped cleanly."""

    def __init__(self, signal_name: str, exit_code: ExitCode):
        super().__init__(f"interrupted by {signal_name}")
        self.exit_code = exit_code
