"""Hook implementations of the built-in ``git`` plugin: registers the ``git`` and ``fs`` hashers.

``git`` (priority 10) applies when the project root is inside a git work tree; ``fs`` (priority
1000) applies anywhere. Both cache the digests of the files they read under ``.mila/cache/``.
The hasher modules are imported only when a hasher is created, so commands that never hash pay
nothing for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mila import hookimpl
from mila.protocols import HasherType

if TYPE_CHECKING:
    from mila.config import ProjectConfig
    from mila.protocols import Hasher

CACHE_FOLDER = "cache"


def _applies_git(root: Path) -> bool:
    from mila_git.git import in_git_work_tree

    return in_git_work_tree(root)


def create_git(config: ProjectConfig) -> Hasher:
    from mila_git.git import GitHasher

    return GitHasher(config.mila_dir / CACHE_FOLDER)


def create_fs(config: ProjectConfig) -> Hasher:
    from mila_git.fs import FsHasher

    return FsHasher(config.mila_dir / CACHE_FOLDER)


@hookimpl
def mila_hashers() -> Sequence[HasherType]:
    return [
        HasherType(name="git", create=create_git, applies=_applies_git, priority=10),
        HasherType(name="fs", create=create_fs, priority=1000),
    ]
