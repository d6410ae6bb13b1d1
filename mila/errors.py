"""The one family of errors mila shows to users.

Every error a user can cause or meet is a :class:`MilaError` with a message written for them
(what is wrong, where, how to fix it) and the exit code the CLI ends with. The CLI prints the
message as one line on stderr; the traceback only with ``-v``. Exit codes are a contract:

====  ==========================================================
0     done
1     an action failed (a deploy or destroy)
2     bad usage, configuration or input; a plan that went stale
3     a lock is held elsewhere and ``--lock-timeout`` ran out
4     ``--detailed-exitcode``: the plan has changes
129   stopped by SIGHUP (the terminal closed)
130   interrupted (Ctrl-C)
143   stopped by SIGTERM (how CI cancels a job)
====  ==========================================================
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The CLI's exit codes (a contract, like pytest's ``ExitCode``)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    LOCKED = 3
    CHANGES = 4
    HANGUP = 129
    INTERRUPTED = 130
    TERMINATED = 143


# The names modules import; each is the ExitCode member itself.
EXIT_OK = ExitCode.OK
EXIT_FAILED = ExitCode.FAILED
EXIT_USAGE = ExitCode.USAGE
EXIT_LOCKED = ExitCode.LOCKED
EXIT_CHANGES = ExitCode.CHANGES
EXIT_INTERRUPTED = ExitCode.INTERRUPTED
EXIT_HANGUP = ExitCode.HANGUP
EXIT_TERMINATED = ExitCode.TERMINATED


class MilaError(Exception):
    """Base class: ``str(error)`` is the message for the user; ``exit_code`` ends the CLI."""

    exit_code: int = EXIT_USAGE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class ConfigError(MilaError):
    """Invalid ``mila.toml``: names the file, the key and the fix."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None,
                 hint: str | None = None) -> None:
        where = ""
        if file and key:
            where = f"{file}: [{key}] " if "." not in key else f"{file}: {key}: "
        elif file:
            where = f"{file}: "
        super().__init__(f"{where}{message}", hint=hint)
        self.file = file
        self.key = key


class ProjectNotFound(ConfigError):
    """No ``mila.toml`` (or ``[tool.mila]``) at or above the folder mila was started in."""


class PluginError(MilaError):
    """A plugin failed to load or registered something invalid; names plugin and distribution."""


class StateError(MilaError):
    """The remote state is missing, unreachable or refuses an operation."""


class StateNotInitialized(StateError):
    def __init__(self, location: str) -> None:
        super().__init__(f"the mila state ({location}) does not exist",
                         hint="run `mila init` to create it")


class EnvironmentNotFound(StateError):
    def __init__(self, name: str) -> None:
        super().__init__(f"environment '{name}' does not exist; create it with "
                         f"`mila envs create {name}`")
        self.name = name


class EnvironmentExists(StateError):
    def __init__(self, name: str) -> None:
        super().__init__(f"environment '{name}' already exists",
                         hint=f"see it with `mila envs describe {name}`")
        self.name = name


class LockLost(StateError):
    """A write was refused because the caller no longer holds the lock it names."""

    exit_code = EXIT_LOCKED


class RecordChanged(StateError):
    """A record write was refused: the stored record is no longer the version the write
    follows (another run wrote it since it was read)."""

    exit_code = EXIT_FAILED

    def __init__(self, environment: str, service: str, region: str, found: int | None,
                 expected: int, *, current: object = None) -> None:
        shown = "none" if found is None else f"version {found}"
        super().__init__(f"the record of {service} in {environment}/{region} changed since it "
                         f"was read ({shown} stored, version {expected} expected); nothing was "
                         "written", hint="another run changed it; run again to see the new plan")
        self.current = current


class LockHeld(StateError):
    """The lock is held by someone else (``holder`` says who)."""

    exit_code = EXIT_LOCKED

    def __init__(self, holder: object, message: str | None = None) -> None:
        super().__init__(message or f"lock held by {holder}")
        self.holder = holder


class DeployError(MilaError):
    """A deployer failed to carry out an action; ``details`` go to the action log."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, details: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.details = details


class PlanStale(MilaError):
    """``mila apply``: the code or the state changed since the plan file was written."""


class ActionStale(MilaError):
    """After taking its lock, an action found its record moved on since the plan (another run
    deployed another checksum, or destroyed it): it writes nothing."""

    exit_code = EXIT_FAILED


class Reported(MilaError):
    """Ends the command with ``exit_code`` once its own output has said why (the failures of a
    run listed, a plan with changes under ``--detailed-exitcode``, a variable that cannot be
    resolved shown): the CLI prints nothing more."""

    def __init__(self, exit_code: int, message: str = "") -> None:
        super().__init__(message or f"exit code {int(exit_code)}")
        self.exit_code = exit_code


class Declined(Reported):
    """The user answered no to the confirmation: nothing was done (exit 1)."""

    def __init__(self, message: str = "declined") -> None:
        super().__init__(EXIT_FAILED, message)


class Interrupted(MilaError):
    exit_code = EXIT_INTERRUPTED


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread so a run stops as on Ctrl-C; ``exit_code``
    is 128 + the signal number (143, 129)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.exit_code = 128 + signum
