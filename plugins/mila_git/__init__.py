"""Built-in mila plugin ``git``: the ``git`` hasher (git-aware, reads only dirty and untracked
files) and the ``fs`` hasher (a plain folder walk, for projects outside a git work tree)."""
