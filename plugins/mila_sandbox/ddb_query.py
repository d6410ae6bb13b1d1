"""A DynamoDB Query reads its own partition, not the whole table.

AWS: a Query costs what it returns (the items of one partition key); the size of the rest of
the table does not matter.

moto 5.2.5: every Query on a table starts from ``Table.all_items()``, which lists and sorts
*every* item of the table, then keeps those of the partition asked for. mila's state table
keeps each environment's records in one partition and its history, which grows with every
action and is never deleted, in another: each ``records()`` read grew slower with each deploy
(and ran under the sandbox's one lock).

The sandbox hands a Query on a table's own key the items of its partition only; moto then
sorts, pages, filters and projects them as before. Queries on an index are unchanged.
"""

from __future__ import annotations

import threading
from typing import Any

_asked = threading.local()  # the (table, hash key) of the Query being answered


def _query(real: Any) -> Any:
    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name is not None or hash_key is None or not self.range_key_attr:
            return real(self, hash_key, *args, **kwargs)
        _asked.query = (self, hash_key)
        try:
            return real(self, hash_key, *args, **kwargs)
        finally:
            _asked.query = None

    return query


def _all_items(real: Any) -> Any:
    def all_items(self: Any) -> list[Any]:
        asked = getattr(_asked, "query", None)
        if asked is None or asked[0] is not self:
            return list(real(self))
        partition = self.items.get(asked[1]) or {}  # .get: items is a defaultdict
        return sorted(partition.values(), key=lambda item: item.range_key)

    return all_items


def install() -> None:
    from moto.dynamodb.models.table import Table

    if not getattr(Table, "_mila_partition_query", False):
        Table.query = _query(Table.query)
        Table.all_items = _all_items(Table.all_items)
        Table._mila_partition_query = True
