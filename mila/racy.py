"""git's "racily clean" rule, for every cache keyed by a file's stat.

A cache that trusts (size, mtime, ctime, inode) to mean "unchanged" must not remember a file
whose last change is too close to the moment it was read: on a coarse clock (the kernel stamps
files from a timer a few milliseconds behind the wall clock; some file systems keep whole
seconds) a second change within the same tick could keep every field of the key. The file
digest cache (``mila_git.blobs``), the index check (``mila_git.index``), the parsed workspace
files (:mod:`mila.parsed_files`) and the entry-point cache (:mod:`mila.entry_points`) all apply
this one rule.
"""

from __future__ import annotations

#: A change less than this before a run started is too recent to be cached by that run.
RACY_SECONDS = 2.0


def horizon(started_ns: int) -> int:
    """The latest change time (ns) a run started at ``started_ns`` may cache: older is settled."""
    return started_ns - int(RACY_SECONDS * 1e9)
