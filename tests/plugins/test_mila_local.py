"""The ``local`` backend: the StateBackend contract on SQLite, plus what is specific to it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from mila_local.state import LocalState

from mila.testing.contracts import StateBackendContract


class TestLocalStateContract(StateBackendContract):
    @pytest.fixture
    def fresh_backend(self, tmp_path: Path) -> LocalState:
        return LocalState(tmp_path / ".mila" / "state.db")


def test_database_is_in_wal_mode(tmp_path: Path) -> None:
    state = LocalState(tmp_path / ".mila" / "state.db")
    state.init()
    with sqlite3.connect(state.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_reads_never_create_the_file(tmp_path: Path) -> None:
    state = LocalState(tmp_path / ".mila" / "state.db")
    with pytest.raises(Exception, match="mila init"):
        state.list_environments()
    assert not state.path.exists()


def test_backend_registered_through_the_plugin(project, run_mila) -> None:  # type: ignore[no-untyped-def]
    from mila.project import load_project

    project.root_config(backend="local")
    state = load_project(project.root).state
    assert isinstance(state, LocalState)
    assert state.path == project.root / ".mila" / "state.db"


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    from mila.errors import StateError

    path = tmp_path / ".mila" / "state.db"
    path.parent.mkdir()
    path.write_text("not sqlite " * 100)
    state = LocalState(path)
    with pytest.raises(StateError, match="state.db"):
        state.init()
    with pytest.raises(StateError, match="state.db"):
        state.list_environments()
