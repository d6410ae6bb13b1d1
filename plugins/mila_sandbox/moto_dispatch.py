"""moto's per-request dispatch, without re-reading what cannot change while it serves.

moto 5.2.5 lists its own package folder (``os.listdir`` and an ``isdir`` per entry, about 70
stat calls) to route *every* request to a backend, and collects a response class's method
names with ``inspect.getmembers`` for every call: about 2.5 ms of the ~8 ms a DynamoDB request
costs the sandbox, under its one lock (measured with four ``mila apply --worker`` processes).

The sandbox keeps the folder's listing after the first request (moto's modules do not change
while it runs) and each class's method names while the class's own dictionaries keep their
size (a fix that adds a method to a class is seen).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def _cached_modules(real: Callable[[], Iterable[str]]) -> Callable[[], Iterable[str]]:
    listing: list[tuple[str, ...]] = []

    def list_of_moto_modules() -> Iterable[str]:
        if not listing:
            listing.append(tuple(real()))
        return listing[0]

    return list_of_moto_modules


def _cached_methods(real: Callable[[object], list[str]]) -> Callable[[object], list[str]]:
    seen: dict[type, tuple[tuple[int, ...], list[str]]] = {}

    def method_names_from_class(clazz: Any) -> list[str]:
        if not isinstance(clazz, type):
            return real(clazz)
        shape = tuple(len(vars(c)) for c in clazz.__mro__)
        found = seen.get(clazz)
        if found is None or found[0] != shape:
            found = seen[clazz] = (shape, real(clazz))
        return list(found[1])

    return method_names_from_class


def install() -> None:
    from moto import backends
    from moto.core import responses

    if not getattr(backends, "_mila_cached", False):
        backends.list_of_moto_modules = _cached_modules(backends.list_of_moto_modules)
        responses.method_names_from_class = _cached_methods(responses.method_names_from_class)
        backends._mila_cached = True  # type: ignore[attr-defined]
