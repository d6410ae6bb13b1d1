"""Install a plugin package into the running interpreter for its tests, so mila finds it
through its entry point exactly as a user's ``pip install`` would."""

from __future__ import annotations

import importlib
import site
import subprocess
import sys
import sysconfig
from pathlib import Path


def plugin_installed(distribution: str, entry_point: str) -> bool:
    """Whether ``distribution`` is installed and registers ``entry_point`` in the group ``mila``."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import distribution as find

    try:
        dist = find(distribution)
    except PackageNotFoundError:
        return False
    return any(ep.group == "mila" and ep.name == entry_point for ep in dist.entry_points)


def ensure_plugin_installed(package_dir: Path, distribution: str, entry_point: str) -> None:
    """``pip install -e package_dir`` unless it is installed already (``scripts/test`` installs
    mila's examples before the run; a plugin author's own test session may not). Call it from
    ``pytest_configure`` in the plugin's ``conftest.py``: test modules that import the plugin
    are collected after that."""
    if plugin_installed(distribution, entry_point):
        return
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "-e",
                    str(package_dir)], check=True)
    # an editable install is a .pth file (an import hook), read only at interpreter start-up:
    # read the site folder's .pth files again so this process can import the package now
    site.addsitedir(sysconfig.get_paths()["purelib"])
    importlib.invalidate_caches()
