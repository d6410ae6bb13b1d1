"""A reference kind for tests: ``${fake:name}`` looked up in ``<root>/.fake-refs.json``.

The file maps ``region -> name -> {"version": ..., "value": ..., "secure": bool}``. Every
``describe``/``value`` call is appended to ``<root>/.fake-refs-calls.jsonl`` so tests can check
that plans never read values.
"""

from __future__ import annotations

import json
from pathlib import Path

from mila import hookimpl
from mila.config import ProjectConfig
from mila.protocols import ReferenceInfo, ReferenceResolverType


def store(root: Path) -> Path:
    return root / ".fake-refs.json"


def put(root: Path, region: str, name: str, value: str, version: str = "1",
        secure: bool = False) -> None:
    path = store(root)
    data = json.loads(path.read_text()) if path.exists() else {}
    history = data.get(region, {}).get(name, {}).get("history", {})
    data.setdefault(region, {})[name] = {"version": version, "value": value, "secure": secure,
                                         "history": {**history, version: value}}
    path.write_text(json.dumps(data))


def calls(root: Path) -> list[dict]:
    path = root / ".fake-refs-calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class FakeReferences:
    name = "fake"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _log(self, **entry: str) -> None:
        with (self.root / ".fake-refs-calls.jsonl").open("a") as f:
            f.write(json.dumps(entry) + "\n")

    def _find(self, target: str, region: str) -> dict | None:
        path = store(self.root)
        data = json.loads(path.read_text()) if path.exists() else {}
        return data.get(region, {}).get(target)

    def describe(self, target: str, region: str) -> ReferenceInfo | None:
        self._log(op="describe", target=target, region=region)
        found = self._find(target, region)
        if found is None:
            return None
        return ReferenceInfo(version=found["version"], secure=found["secure"], type="fake")

    def value(self, target: str, region: str, version: str) -> str:
        self._log(op="value", target=target, region=region, version=version)
        found = self._find(target, region)
        assert found is not None and version in found["history"]
        return str(found["history"][version])

    def copy(self, target: str, source_region: str, target_region: str) -> bool:
        if self._find(target, target_region) is not None:
            return False
        found = self._find(target, source_region)
        assert found is not None
        put(self.root, target_region, target, found["value"], found["version"], found["secure"])
        return True


@hookimpl
def mila_reference_resolvers() -> list[ReferenceResolverType]:
    def create(config: ProjectConfig) -> FakeReferences:
        return FakeReferences(config.root)

    return [ReferenceResolverType("fake", create)]
