"""JSON forms of the state's values: environments, records, locks, history entries.

State backends store these documents (SQLite rows, DynamoDB items) and ``--json`` outputs print
them, so a field reads the same everywhere. Datetimes are ISO 8601 strings in UTC, enums their
value, mappings plain dicts, tuples lists. ``*_from_dict`` accepts what ``*_to_dict`` wrote,
ignoring unknown keys (a newer mila may have added fields; see :mod:`mila.model`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from mila.model import (
    ActionKind,
    Environment,
    HistoryEntry,
    Lock,
    LockOwner,
    Record,
    Status,
    frozen_mapping,
)


def dt_to_str(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with microseconds (sortable as text); naive datetimes are taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


def str_to_dt(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def plain(value: Any) -> Any:
    """``value`` with every mapping a dict and every tuple a list (read-only mappings from
    :mod:`mila.model` included), ready for ``json.dumps``."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


# ----------------------------------------------------------------------------- environments


def environment_to_dict(env: Environment) -> dict[str, Any]:
    return {"name": env.name, "regions": list(env.regions),
            "created_at": dt_to_str(env.created_at), "created_by": env.created_by}


def environment_from_dict(data: Mapping[str, Any]) -> Environment:
    return Environment(name=str(data["name"]), regions=tuple(data.get("regions") or ()),
                       created_at=str_to_dt(data.get("created_at")),
                       created_by=data.get("created_by"))


# ----------------------------------------------------------------------------- records


def record_to_dict(record: Record) -> dict[str, Any]:
    return {
        "environment": record.environment,
        "service": record.service,
        "region": record.region,
        "checksum": record.checksum,
        "status": record.status.value,
        "deployer": record.deployer,
        "stack_name": record.stack_name,
        "outputs": dict(record.outputs),
        "commit": record.commit,
        "deployed_by": record.deployed_by,
        "deployed_at": dt_to_str(record.deployed_at),
        "duration_seconds": record.duration_seconds,
        "manifest_key": record.manifest_key,
        "message": record.message,
        "depends_on": list(record.depends_on),
        "version": record.version,
        "started_by": record.started_by,
        "started_at": dt_to_str(record.started_at),
        "data": plain(record.data),
    }


def record_from_dict(data: Mapping[str, Any]) -> Record:
    return Record(
        environment=str(data["environment"]),
        service=str(data["service"]),
        region=str(data["region"]),
        checksum=data.get("checksum"),
        status=Status(data["status"]),
        deployer=str(data["deployer"]),
        stack_name=data.get("stack_name"),
        outputs=frozen_mapping({str(k): str(v) for k, v in (data.get("outputs") or {}).items()}),
        commit=data.get("commit"),
        deployed_by=data.get("deployed_by"),
        deployed_at=str_to_dt(data.get("deployed_at")),
        duration_seconds=_float(data.get("duration_seconds")),
        manifest_key=data.get("manifest_key"),
        message=data.get("message"),
        depends_on=tuple(data.get("depends_on") or ()),
        version=int(data.get("version") or 0),
        started_by=data.get("started_by"),
        started_at=str_to_dt(data.get("started_at")),
        data=frozen_mapping(dict(data.get("data") or {})),
    )


# ----------------------------------------------------------------------------- locks


def owner_to_dict(owner: LockOwner) -> dict[str, Any]:
    return {"owner_id": owner.owner_id, "user": owner.user, "host": owner.host,
            "pid": owner.pid, "ci_job": owner.ci_job}


def owner_from_dict(data: Mapping[str, Any]) -> LockOwner:
    return LockOwner(owner_id=str(data["owner_id"]), user=str(data.get("user") or ""),
                     host=str(data.get("host") or ""), pid=int(data.get("pid") or 0),
                     ci_job=data.get("ci_job"))


def lock_to_dict(lock: Lock) -> dict[str, Any]:
    return {"environment": lock.environment, "service": lock.service, "region": lock.region,
            "owner": owner_to_dict(lock.owner), "acquired_at": dt_to_str(lock.acquired_at),
            "expires_at": dt_to_str(lock.expires_at)}


def lock_from_dict(data: Mapping[str, Any]) -> Lock:
    acquired = str_to_dt(data["acquired_at"])
    expires = str_to_dt(data["expires_at"])
    assert acquired is not None and expires is not None
    return Lock(environment=str(data["environment"]), service=str(data["service"]),
                region=str(data["region"]), owner=owner_from_dict(data["owner"]),
                acquired_at=acquired, expires_at=expires)


# ----------------------------------------------------------------------------- history


def history_to_dict(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "environment": entry.environment,
        "service": entry.service,
        "region": entry.region,
        "action": entry.action.value,
        "status": entry.status.value,
        "checksum": entry.checksum,
        "at": dt_to_str(entry.at),
        "by": entry.by,
        "commit": entry.commit,
        "duration_seconds": entry.duration_seconds,
        "message": entry.message,
    }


def history_from_dict(data: Mapping[str, Any]) -> HistoryEntry:
    at = str_to_dt(data["at"])
    assert at is not None
    return HistoryEntry(
        environment=str(data["environment"]),
        service=str(data["service"]),
        region=str(data["region"]),
        action=ActionKind(data["action"]),
        status=Status(data["status"]),
        checksum=data.get("checksum"),
        at=at,
        by=data.get("by"),
        commit=data.get("commit"),
        duration_seconds=_float(data.get("duration_seconds")),
        message=data.get("message"),
    )
