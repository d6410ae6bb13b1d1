"""The :class:`~mila.protocols.ReferenceResolver` contract, written once as pytest tests.

A reference kind (``mila_reference_resolvers``) proves it keeps the contract by subclassing
:class:`ReferenceResolverContract` in a module pytest collects and overriding three fixtures:
``resolver`` (an instance), ``put`` (a callable ``put(target, region, value)`` that creates the
referenced thing, or a new version of it, the way a user would) and ``regions`` (two region
names). What it checks:

* ``describe`` of something that does not exist is ``None``, in any region;
* ``describe`` gives a version, the same until the value changes and a different one after;
* ``value(target, region, version)`` reads exactly that version, an older one included;
* each region is separate: a target put in one region does not exist in the other;
* ``copy`` puts the value in the other region (``True``), then is a no-op (``False``), and
  never changes the source;
* no method's ``repr`` or message of a :class:`ReferenceInfo` holds the value.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from mila.protocols import ReferenceInfo, ReferenceResolver

__all__ = ["ReferenceResolverContract"]

Put = Callable[[str, str, str], None]


class ReferenceResolverContract:
    """Subclass and override the ``resolver``, ``put`` and ``regions`` fixtures; ``target``
    (the name the tests use) may be overridden when the kind needs another shape."""

    @pytest.fixture
    def resolver(self) -> ReferenceResolver:
        raise NotImplementedError("override the `resolver` fixture")

    @pytest.fixture
    def put(self) -> Put:
        raise NotImplementedError("override the `put` fixture: put(target, region, value)")

    @pytest.fixture
    def regions(self) -> tuple[str, str]:
        return ("eu-west-1", "us-east-1")

    @pytest.fixture
    def target(self) -> str:
        return "mila-contract/value"

    def test_it_is_a_reference_resolver(self, resolver: ReferenceResolver) -> None:
        assert isinstance(resolver, ReferenceResolver)
        assert isinstance(resolver.name, str) and resolver.name and resolver.name != "env"

    def test_nothing_is_none(self, resolver: ReferenceResolver, regions: tuple[str, str],
                             target: str) -> None:
        for region in regions:
            assert resolver.describe(target, region) is None

    def test_versions_name_values(self, resolver: ReferenceResolver, put: Put,
                                  regions: tuple[str, str], target: str) -> None:
        region = regions[0]
        put(target, region, "first-Vq2")
        first = resolver.describe(target, region)
        assert isinstance(first, ReferenceInfo) and first.version
        assert resolver.describe(target, region) == first  # stable while unchanged
        assert resolver.value(target, region, first.version) == "first-Vq2"
        put(target, region, "second-Vq2")
        second = resolver.describe(target, region)
        assert second is not None and second.version != first.version
        assert resolver.value(target, region, second.version) == "second-Vq2"
        assert resolver.value(target, region, first.version) == "first-Vq2"  # pinned
        assert "Vq2" not in repr(first) + repr(second)  # an info never holds the value

    def test_regions_are_separate_and_copy_fills_one(self, resolver: ReferenceResolver,
                                                     put: Put, regions: tuple[str, str],
                                                     target: str) -> None:
        source, other = regions
        put(target, source, "copied-Vq2")
        assert resolver.describe(target, other) is None
        before = resolver.describe(target, source)
        assert resolver.copy(target, source, other) is True
        copied = resolver.describe(target, other)
        assert copied is not None
        assert resolver.value(target, other, copied.version) == "copied-Vq2"
        assert copied.secure == (before.secure if before else copied.secure)
        assert resolver.copy(target, source, other) is False  # already there: kept
        assert resolver.describe(target, source) == before  # the source is only read
