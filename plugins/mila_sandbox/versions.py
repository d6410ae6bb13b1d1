"""The moto and aws-sam-translator versions the sandbox's fidelity fixes were written for.

The fixes patch moto's internals (backend classes, response handlers). On another version a
patch could silently stop applying, and the sandbox would lie about AWS; so anything but the
pinned versions is refused, loudly, with the command that installs the right ones.
"""

from __future__ import annotations

from importlib import metadata

from mila.errors import MilaError

#: distribution name → the exact version the fixes were written and tested against
PINNED = {"moto": "5.2.5", "aws-sam-translator": "1.115.0"}
INSTALL_HINT = 'pip install "mila[sandbox]"'


class SandboxUnavailable(MilaError):
    """The sandbox's dependencies are missing (``missing`` true) or at versions it was not
    written for (exit 2)."""

    missing = False


class SandboxMissing(SandboxUnavailable):
    missing = True


def installed_versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PINNED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def check_versions() -> None:
    """Raise :class:`SandboxUnavailable` unless the pinned versions are installed."""
    found = installed_versions()
    missing = [name for name, version in found.items() if version is None]
    if missing:
        raise SandboxMissing(f"the sandbox needs {' and '.join(missing)}, which "
                                 f"{'is' if len(missing) == 1 else 'are'} not installed",
                                 hint=INSTALL_HINT)
    try:  # moto's server extra (flask, werkzeug) — `pip install moto` alone lacks it
        import flask  # noqa: F401
        import werkzeug  # noqa: F401
    except ImportError:
        raise SandboxMissing("the sandbox needs moto's server extra (flask)",
                                 hint=INSTALL_HINT) from None
    wrong = {name: version for name, version in found.items() if version != PINNED[name]}
    if wrong:
        listing = ", ".join(f"{name} {version} (needs {PINNED[name]})"
                            for name, version in wrong.items())
        raise SandboxUnavailable(f"the sandbox's fidelity fixes were written for other versions: "
                                 f"{listing}", hint=INSTALL_HINT)
