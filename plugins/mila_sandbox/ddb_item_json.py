"""DynamoDB items answered at the cost of their size.

AWS: a Query returning a few hundred small items is one request of a few milliseconds.

moto 5.2.5 writes every JSON response through a generic, model-driven serializer: for each
``AttributeValue`` of each item it tries all ten members (``S``, ``N``, ``B``, ``SS``, ``NS``,
``BS``, ``M``, ``L``, ``NULL``, ``BOOL``), each under up to a dozen alias names. A Query of 200
mila state records (about 20 attributes each) cost about 0.3 s of server time, 90% of it in that
search — under the sandbox's one lock, so every other request waited. Four
``mila apply --worker`` processes reading their environment once a round saturated the sandbox
(issue 18: 120 s for a plan AWS would carry out in 13).

The items moto hands to the serializer are already in DynamoDB's wire form (``{"S": "x"}``,
``{"M": {...}}``, binary values as bytes). This fix writes such an ``AttributeValue`` directly,
exactly as the generic serializer would (a test compares the two on generated items); any
value not in that form goes the generic way.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from enum import Enum
from typing import Any

#: services whose JSON responses carry ``AttributeValue`` items
SERVICES = frozenset({"dynamodb", "dynamodbstreams"})

_generic: Callable[..., None] | None = None


class _NotWire(Exception):
    """A value the fast path does not handle: the generic serializer writes it."""


def _string(value: Any) -> Any:
    if isinstance(value, Enum):
        value = value.value
    return str(value) if value not in (None, {}, []) else value


def _blob(value: Any) -> str:
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not isinstance(value, (bytes, bytearray)):
        raise _NotWire
    return base64.b64encode(value).strip().decode("utf-8")


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _NotWire
    return value


def wire(value: Any) -> dict[str, Any]:
    """``value`` (one ``AttributeValue``) as the response carries it; raises :class:`_NotWire`."""
    if type(value) is not dict:
        raise _NotWire
    out: dict[str, Any] = {}
    for member, v in value.items():
        if v is None:
            continue
        if member in ("S", "N"):
            out[member] = _string(v)
        elif member in ("NULL", "BOOL"):
            out[member] = v
        elif member == "B":
            out[member] = _blob(v)
        elif member in ("SS", "NS"):
            out[member] = [_string(x) for x in _list(v)]
        elif member == "BS":
            out[member] = [_blob(x) for x in _list(v)]
        elif member == "M":
            if type(v) is not dict:
                raise _NotWire
            out[member] = {k: wire(x) for k, x in v.items()}
        elif member == "L":
            out[member] = [wire(x) for x in _list(v)]
        else:
            raise _NotWire
    return out


def _structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
    assert _generic is not None
    if key and shape.name == "AttributeValue" \
            and self.operation_model.service_model.service_name in SERVICES:
        try:
            serialized[self.get_serialized_name(shape, key)] = wire(value)
            return
        except _NotWire:
            pass
    _generic(self, serialized, value, shape, key)


def generic_structure() -> Callable[..., None]:
    """moto's own method (the tests compare against it)."""
    assert _generic is not None
    return _generic


def install() -> None:
    global _generic
    from moto.core.serialize import BaseJSONSerializer

    if _generic is None:
        _generic = BaseJSONSerializer._serialize_type_structure
        BaseJSONSerializer._serialize_type_structure = _structure  # type: ignore[method-assign]
