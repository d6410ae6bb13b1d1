"""The entry point cache (``.mila/cache/entry-points.json``): used while nothing installed
changed; an install, an uninstall, a reinstall or an edit in place of ``entry_points.txt`` is
seen on the next command."""

from __future__ import annotations

import importlib
import os
import shutil
import sys

import pytest

import mila.entry_points
import mila.racy
from mila.entry_points import CACHE_FILE
from mila.plugins import build_plugin_manager

PLUGIN = '''
from mila import hookimpl
from mila.protocols import DeployerType

@hookimpl
def mila_deployers():
    return [DeployerType("{name}", create=lambda config: None)]
'''


READS: list[int] = []  # one per read of the installed distributions


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on ``sys.path`` to install distributions into; reads of the installed entry
    points are counted."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(mila.racy, "RACY_SECONDS", -60.0)  # files of this test are new
    READS.clear()
    real = mila.entry_points.metadata

    def counting():
        READS.append(1)
        return real()

    monkeypatch.setattr(mila.entry_points, "metadata", counting)
    return folder


def install(site, dist: str, plugin: str, deployer: str) -> None:
    (site / f"{plugin}.py").write_text(PLUGIN.format(name=deployer))
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"  # as installers name it
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[mila]\n{plugin} = {plugin}\n")
    importlib.invalidate_caches()  # in-process, importlib's listing of a folder is kept


def deployers(cache) -> set[str]:
    return set(build_plugin_manager(environ={}, cache_dir=cache).registry.deployers)


def test_the_cache_serves_until_something_is_installed_or_removed(site, tmp_path) -> None:
    cache = tmp_path / "cache"
    install(site, "dist-a", "plug_a", "dep-a")
    assert "dep-a" in deployers(cache)
    assert (cache / CACHE_FILE).is_file()
    READS.clear()
    pm = build_plugin_manager(environ={}, cache_dir=cache)
    assert "dep-a" in pm.registry.deployers and READS == []  # no distribution read
    assert pm.infos["plug_a"].distribution == "dist-a" and pm.infos["plug_a"].version == "1.0"

    install(site, "dist-b", "plug_b", "dep-b")
    assert {"dep-a", "dep-b"} <= deployers(cache)
    shutil.rmtree(site / "dist_a-1.0.dist-info")
    importlib.invalidate_caches()
    assert "dep-a" not in deployers(cache)


def test_an_edit_in_place_of_entry_points_is_seen(site, tmp_path) -> None:
    cache = tmp_path / "cache"
    install(site, "dist-a", "plug_a", "dep-a")
    (site / "plug_c.py").write_text(PLUGIN.format(name="dep-c"))
    assert "dep-a" in deployers(cache)
    eps = site / "dist_a-1.0.dist-info" / "entry_points.txt"
    st = os.stat(eps)
    eps.write_text("[mila]\nplug_c = plug_c\n")  # same size, same mtime: only ctime tells
    os.utime(eps, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert deployers(cache) >= {"dep-c"} and "dep-a" not in deployers(cache)


def test_a_fresh_install_is_not_cached(site, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(mila.racy, "RACY_SECONDS", 2.0)
    install(site, "dist-a", "plug_a", "dep-a")
    assert "dep-a" in deployers(tmp_path / "cache")
    assert not (tmp_path / "cache" / CACHE_FILE).exists()


def test_a_corrupt_cache_or_another_finder_reads_them_again(site, tmp_path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    install(site, "dist-a", "plug_a", "dep-a")
    deployers(cache)
    for text in ("{", "[]", '{"format": 1, "groups": {"mila": {"key": 3}}}'):
        (cache / CACHE_FILE).write_text(text)
        assert "dep-a" in deployers(cache)

    class Finder:
        @staticmethod
        def find_distributions(context=None):
            return iter(())

    monkeypatch.setattr("sys.meta_path", [*sys.meta_path, Finder])
    assert mila.entry_points.fingerprint() is None
    READS.clear()
    assert "dep-a" in deployers(cache) and READS
