"""Why a checksum changed: the human lines ``mila plan``, ``mila why`` and ``mila affected``
show, read from two manifests (:class:`mila.checksums.Checksum`), the recorded one and the
current one. Files added, removed, modified or renamed, dependencies, consumed outputs, config,
deployer, project settings, inputs and variables — each compared by its own step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def explain(old: Mapping[str, Any] | None, new: Mapping[str, Any], limit: int = 20) -> list[str]:
    """Human lines saying why a checksum changed: files added, removed, modified or renamed,
    dependencies, config, deployer, root files and inputs. ``[]`` when nothing changed; at most
    ``limit`` lines per kind of file change."""
    if old is None:
        return ["no earlier manifest to compare with"]
    if old.get("checksum") == new.get("checksum"):
        return []
    if old.get("format") != new.get("format"):
        return [f"checksum format changed ({old.get('format')} → {new.get('format')}): "
                "mila was upgraded"]
    op, np = old.get("parts", {}), new.get("parts", {})
    path = str(new.get("path") or "")
    prefix = "" if path in ("", ".") else path + "/"
    lines = _file_changes(op.get("files", {}), np.get("files", {}), prefix, limit)
    lines += [f"{line} (root src)" for line in
              _file_changes(op.get("root_files", {}), np.get("root_files", {}), "", limit)]
    lines += [f"{line} (packaged)" for line in
              _file_changes(op.get("packaged", {}), np.get("packaged", {}), "", limit)]
    lines += _keyed_changes(op.get("dependencies", {}), np.get("dependencies", {}),
                            "now depends on {}", "no longer depends on {}", "dependency {} changed")
    lines += _output_changes(old.get("outputs") or {}, new.get("outputs") or {})
    lines += _config_changes(op.get("config", {}), np.get("config", {}))
    lines += _deployer_changes(op.get("deployer"), np.get("deployer"))
    lines += _project_changes(op.get("project"), np.get("project"))
    for what, part in (("input", "inputs"), ("variable", "variables")):
        lines += _keyed_changes(old.get(part) or {}, new.get(part) or {}, f"{what} {{}} added",
                                f"{what} {{}} removed", f"{what} {{}} changed")
    return lines or ["checksum changed"]


def _output_changes(old: Mapping[str, str | None], new: Mapping[str, str | None]) -> list[str]:
    lines = []
    for key in sorted(set(old) | set(new)):
        if key not in old:
            lines.append(f"now consumes output {key}")
        elif key not in new:
            lines.append(f"no longer consumes output {key}")
        elif new[key] is None:
            lines.append(f"output {key} known after apply")
        elif old[key] != new[key]:
            lines.append(f"output {key} changed")
    return lines


def _config_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    if old == new:
        return []
    keys = sorted(k for k in set(old) | set(new) if k != "settings" and old.get(k) != new.get(k))
    os_, ns = old.get("settings", {}), new.get("settings", {})
    keys += sorted(f"service.{k}" for k in set(os_) | set(ns)
                   if k != "parameters" and os_.get(k) != ns.get(k))
    lines = _parameter_changes(os_.get("parameters") or {}, ns.get("parameters") or {})
    if keys:
        lines.append(f"config changed: {', '.join(keys)}")
    return lines


def _deployer_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[str]:
    if old == new:
        return []
    if old and new and old.get("name") == new.get("name"):
        return [f"deployer version changed: {new['name']} "
                f"{old.get('version')} → {new.get('version')}"]
    return [f"deployer changed: {_deployer(old)} → {_deployer(new)}"]


def _project_changes(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> list[str]:
    if old == new:
        return []
    old, new = old or {}, new or {}
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return [f"project settings changed: {', '.join(keys)}"]


def _keyed_changes(old: Mapping[str, Any], new: Mapping[str, Any], added: str, removed: str,
                   changed: str) -> list[str]:
    """A line per key added, removed or changed; each template names the key with ``{}``."""
    lines = []
    for key in sorted(set(old) | set(new)):
        if key not in old:
            lines.append(added.format(key))
        elif key not in new:
            lines.append(removed.format(key))
        elif old[key] != new[key]:
            lines.append(changed.format(key))
    return lines


def _parameter_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    return [f"parameter {k} " + ("added" if k not in old else "removed" if k not in new
                                 else "changed")
            for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def _deployer(d: Mapping[str, Any] | None) -> str:
    return f"{d.get('name')} {d.get('version')}" if d else "none"


def _file_changes(old: Mapping[str, str], new: Mapping[str, str], prefix: str,
                  limit: int) -> list[str]:
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    modified = sorted(p for p in set(old) & set(new) if old[p] != new[p])
    # a removed file whose exact content reappears under a new name was renamed
    by_digest: dict[str, list[str]] = {}
    for p in removed:
        by_digest.setdefault(old[p], []).append(p)
    renamed: list[tuple[str, str]] = []
    for p in list(added):
        sources = by_digest.get(new[p])
        if sources:
            src = sources.pop(0)
            renamed.append((src, p))
            added.remove(p)
            removed.remove(src)
    lines: list[str] = []
    for verb, items in (("added", added), ("removed", removed), ("modified", modified)):
        lines += [f"{verb} {prefix}{p}" for p in items[:limit]]
        if len(items) > limit:
            lines.append(f"… and {len(items) - limit} more {verb} files")
    lines += [f"renamed {prefix}{a} → {prefix}{b}" for a, b in renamed[:limit]]
    if len(renamed) > limit:
        lines.append(f"… and {len(renamed) - limit} more renamed files")
    return lines
