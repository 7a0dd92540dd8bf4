#!/usr/bin/env python3
"""Run moto's server (DynamoDB, DynamoDB Streams, S3, KMS, ... on one port)
for the integration tests, with moto's model-instance tracking turned off.

Why: every moto model class derives from ``moto.core.common_models.BaseModel``,
whose ``__new__`` appends each new instance to ``cls.instances_tracked`` (a list
created per class by the metaclass ``moto.core.base_backend.InstanceTrackerMeta``
and registered in ``moto.core.model_instances.model_data``). It exists only to
feed the server's dashboard (``GET /moto-api/data.json``), but it keeps a strong
reference to every model ever created -- including the DynamoDB ``Item`` copies
made for every Query/GetItem result and every TransactWriteItems rollback copy.
Those are never freed, so a long test run grows the server without bound.
``POST /moto-api/reset`` only drops the lists, it does not stop the growth.

We replace ``BaseModel.__new__`` with one that does not record the instance.
The only in-server readers of ``instances_tracked`` are that dashboard (now
empty) and ``S3Backend.reset`` (which disposes orphaned keys; unreferenced keys
are disposed by ``FakeKey.__del__`` instead once nothing tracks them).

Second patch: key-condition Queries on a table's primary key cost in proportion to the
result, as on DynamoDB. moto 5.2.5 answers every Query by sorting *every item of the table*,
then walking the partition from its start (also to find an ExclusiveStartKey), so a 51-item
tail read of a 50,000-event aggregate takes about a second and a paginated read is quadratic.
Each partition now keeps its range keys sorted (kept up to date on put and delete), and a
Query on the table (no index, no legacy QueryFilter, at most one range condition of
=, <, <=, >, >=, BETWEEN) bisects to the first matching item and reads only what it returns.
Limit, the 1 MB page limit, LastEvaluatedKey, ScanIndexForward, FilterExpression (after the
limit) and projections behave as in moto's own query; anything else goes to moto's code.

Third patch: a Query's items are written to JSON directly. moto 5.2.5 serializes every
response through a generic, model-driven serializer that walks the botocore shape of every
attribute of every item: about a millisecond per returned event, so a full replay of a
50,000-event aggregate took a minute. The rest of the response (status, headers, Count,
LastEvaluatedKey, ConsumedCapacity) still goes through moto's serializer; the items get the
same JSON it writes (binary values base64-encoded). On the fast Query path (a Query answered
to a client, no filter, no projection) each item is turned into that JSON in one walk under
the table lock, a walk that also gives moto's ``Item.size()`` for the 1 MB page: moto
deep-copies every returned item, measures it in another walk and converts it twice more
(plain values, then JSON), work DynamoDB does not do per item. tools/moto/test_launcher.py
compares the launcher's answers with moto's own server's.

Fourth patch: TransactWriteItems without copying tables. moto deep-copies every table a
transaction touches before it starts (to put the copies back if it is cancelled), so each
multi-event append costs in proportion to the whole event table: quadratic over a long run
(the chaos suite's larger runs append 100,000 events). Writes are serialised (``serialize_dynamodb_writes``),
so a transaction of Put, Delete and ConditionCheck operations on distinct items can check
every condition first and apply only when all pass: nothing to undo, no copy, no stream
record of a cancelled write. Transactions with an Update go to moto's own code.

Equivalent to ``moto_server -H HOST -p PORT`` otherwise (same WSGI app, same
request handler, threaded werkzeug server). Prints one ready line to stdout
once the socket is listening and exits 0 on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import signal
import sys
import threading
from typing import Any

EXPECTED_MOTO_VERSION = "5.2.5"


def disable_instance_tracking() -> None:
    """Stop moto from keeping a reference to every model instance it creates."""
    from moto.core import common_models
    from moto.core.model_instances import reset_model_data

    def _untracked_new(cls: type, *args: Any, **kwargs: Any) -> Any:
        # BaseModel's direct base is object; this is what the original did,
        # minus ``cls.instances_tracked.append(instance)``.
        return object.__new__(cls)

    # __new__ is only implicitly static when defined in a class body.
    common_models.BaseModel.__new__ = staticmethod(_untracked_new)  # type: ignore[method-assign]
    # Drop anything tracked during import (normally nothing).
    reset_model_data()


def serialize_dynamodb_writes() -> None:
    """Make DynamoDB writes atomic with respect to each other, as in DynamoDB.

    moto's ``transact_write_items`` deep-copies every table it touches and, when the
    transaction is cancelled, puts the copies back -- undoing any write another request
    thread committed to those tables in the meantime (a racing writer's committed event
    vanishes), and a concurrent read may see puts that are then rolled back. One lock
    around the item operations makes each one atomic, as DynamoDB's are.
    """
    import functools
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in (
        "put_item",
        "update_item",
        "delete_item",
        "transact_write_items",
        "batch_write_item",
        "get_item",
        "query",
        "scan",
        "transact_get_items",
    ):
        original = getattr(DynamoDBBackend, name, None)
        if original is None:
            continue

        def locked(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, functools.wraps(original)(locked))


def install_copy_free_transactions() -> None:
    """TransactWriteItems of Put/Delete/ConditionCheck: check all, then apply (no table copy).

    Must run before ``serialize_dynamodb_writes`` so the lock wraps this version: the check
    and the writes then happen with no other DynamoDB operation in between.
    """
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
    )
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.transact_write_items
    simple = {"ConditionCheck", "Put", "Delete"}

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        if len(transact_items) > 100:
            raise TooManyTransactionsException()
        if any(len(item) != 1 or next(iter(item)) not in simple for item in transact_items):
            return original(self, transact_items)
        seen: set[tuple[str, str]] = set()
        planned: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = []
        errors: list[tuple[Any, Any, Any]] = []
        for item in transact_items:
            op_type, op = next(iter(item.items()))
            original_item = None
            try:
                table_name = op["TableName"]
                if op_type == "Put":
                    attrs = op["Item"]
                    table = self.get_table(table_name)
                    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                    if table.range_key_attr is not None:
                        key[table.range_key_attr] = attrs[table.range_key_attr]
                else:
                    key = op["Key"]
                unique = (str(table_name), str(dict(sorted(key.items()))))
                if unique in seen:
                    raise MultipleTransactionsException()
                seen.add(unique)
                current = self.get_item(table_name, key)
                condition = op.get("ConditionExpression")
                if condition is not None:
                    check = get_filter_expression(
                        condition,
                        op.get("ExpressionAttributeNames"),
                        op.get("ExpressionAttributeValues"),
                    )
                    if not check.expr(current):
                        if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                            original_item = current.to_json()["Attributes"]
                        raise ConditionalCheckFailed(item=original_item)
                planned.append((op_type, op, table_name, key))
                errors.append((None, None, None))
            except (MultipleTransactionsException, MockValidationException):
                raise  # nothing was written yet
            except ConditionalCheckFailed as e:
                errors.append(("ConditionalCheckFailed", str(e.message), original_item))
            except Exception as e:  # noqa: BLE001 -- reported per item, as moto does
                errors.append((type(e).__name__, str(e), original_item))
        if any(code is not None for code, _, _ in errors):
            raise TransactionCanceledException(errors)
        for op_type, op, table_name, key in planned:
            if op_type == "Put":
                self.put_item(table_name, op["Item"])
            elif op_type == "Delete":
                self.delete_item(table_name, key)
        return None

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def check_instance_tracking_disabled() -> None:
    """Fail loudly if the patch did not take (e.g. moto changed its internals)."""
    from moto.dynamodb.models.dynamo_type import Item

    # copy.deepcopy() creates model copies exactly like this (cls.__new__(cls)).
    Item.__new__(Item)
    tracked = getattr(Item, "instances_tracked", [])
    if tracked:
        raise SystemExit(
            "moto launcher: disabling moto's instance tracking failed "
            f"({len(tracked)} Item instance(s) tracked); "
            "check tools/moto/launcher.py against the installed moto version"
        )


# Range-key comparisons the fast Query path bisects (moto's names for them).
_BISECTABLE = {"EQ", "=", "LT", "<", "LE", "<=", "GT", ">", "GE", ">=", "BETWEEN"}


class _Partition(dict):  # type: ignore[type-arg]
    """One hash key's items by range key, with the range keys kept sorted for Query."""

    __slots__ = ("_keys", "_values")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._keys: list[Any] | None = None
        self._values: list[Any] | None = None

    def __reduce__(self) -> Any:
        # copy.deepcopy (backups, restores) keeps the class; the sort is rebuilt on demand.
        return (_Partition, (dict(self),))

    def __setitem__(self, key: Any, value: Any) -> None:
        new = key not in self
        super().__setitem__(key, value)
        if new and self._keys is not None and self._values is not None:
            value_of_key = key.cast_value
            if not self._values or self._values[-1] < value_of_key:
                # Appends in key order (the common case for event streams) stay O(1).
                self._keys.append(key)
                self._values.append(value_of_key)
            else:
                self._keys = self._values = None

    def __delitem__(self, key: Any) -> None:
        super().__delitem__(key)
        self._keys = self._values = None

    def pop(self, *args: Any) -> Any:
        self._keys = self._values = None
        return super().pop(*args)

    def popitem(self) -> Any:
        self._keys = self._values = None
        return super().popitem()

    def clear(self) -> None:
        self._keys = self._values = None
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._keys = self._values = None
        super().update(*args, **kwargs)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        self._keys = self._values = None
        return super().setdefault(key, default)

    def sorted_keys(self) -> tuple[list[Any], list[Any]]:
        if self._keys is None or self._values is None:
            keys = sorted(self.keys(), key=lambda k: k.cast_value)
            self._keys = keys
            self._values = [k.cast_value for k in keys]
        return self._keys, self._values


# Set while moto's Query handler runs on this thread: the Query's items may then be written
# to their JSON form as they are read (the fast Query path), under the table lock.
_writing = threading.local()


class _Written:
    """An item already in the form the response serializer gives it (plain JSON values)."""

    __slots__ = ("document",)

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    @property
    def attrs(self) -> _Written:
        # moto's handler takes ``item.attrs`` and its ``dynamo_to_dict`` passes anything it
        # does not know through untouched: the document reaches the response writer as is.
        return self


def _bytesize(value: Any) -> int:
    # moto's ``bytesize``: UTF-8 bytes of text (an ASCII string's length, without encoding it).
    if isinstance(value, bytes):
        return len(value)
    return len(value) if value.isascii() else len(value.encode("utf-8"))


def _b64(value: Any) -> str:
    # moto keeps B values as received (base64 text) or as bytes; its response is the base64
    # of the decoded bytes (``dynamo_to_dict`` decodes, the serializer encodes).
    import base64

    raw = value if isinstance(value, bytes) else base64.b64decode(value)
    return base64.b64encode(raw).decode("ascii")


def _written_value(value: Any) -> tuple[Any, int]:
    """One attribute value: its response JSON and moto's ``DynamoType.size()``, in one walk."""
    kind = value.type
    inner = value.value
    if kind == "S":
        return {"S": inner}, _bytesize(inner)
    if kind == "N":
        return {"N": inner}, len(str(inner))
    if kind == "M":
        document = {}
        size = 0
        for key, member in inner.items():
            member_document, member_size = _written_value(member)
            document[key] = member_document
            size += _bytesize(key) + member_size
        return {"M": document}, size
    if kind == "L":
        members = [_written_value(member) for member in inner]
        return {"L": [d for d, _ in members]}, sum(s for _, s in members)
    if kind == "B":
        return {"B": _b64(inner)}, _bytesize(inner)
    if kind == "BOOL" and isinstance(inner, bool):
        return {"BOOL": inner}, 1
    if kind == "NULL" and isinstance(inner, bool):
        return {"NULL": inner}, 1
    if kind == "SS":
        return {"SS": list(inner)}, sum(_bytesize(v) for v in inner)
    if kind == "NS":
        return {"NS": list(inner)}, sum(len(str(v)) for v in inner)
    if kind == "BS":
        return {"BS": [_b64(v) for v in inner]}, sum(_bytesize(v) for v in inner)
    # Anything else: moto's own conversion and size.
    from moto.dynamodb.models.utilities import dynamo_to_dict

    return _encode(dynamo_to_dict(value)), value.size()


def _written_item(item: Any) -> tuple[dict[str, Any], int]:
    """An item's response JSON and moto's ``Item.size()`` (the 1 MB page limit), in one walk."""
    document = {}
    size = 0
    for key, value in item.attrs.items():
        kind = value.type
        if kind == "S":  # the common scalars inline: this runs for every item returned
            text = value.value
            document[key] = {"S": text}
            value_size = len(text) if text.isascii() else len(text.encode("utf-8"))
        elif kind == "N":
            document[key] = {"N": value.value}
            value_size = len(str(value.value))
        else:
            document[key], value_size = _written_value(value)
        size += (len(key) if key.isascii() else len(key.encode("utf-8"))) + value_size
    return document, size


def _encode(value: Any) -> Any:
    """The model-driven serializer's output for an AttributeValue: binaries (B, BS) as base64
    text, everything else (strings, numbers as strings, booleans) as is."""
    if isinstance(value, _Written):
        return value.document
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {key: _encode(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_encode(inner) for inner in value]
    return value


def install_fast_query() -> None:
    """Queries on a table's key read only the items they return (see the module docstring)."""
    import bisect
    import copy
    from collections import defaultdict

    from moto.dynamodb.comparisons import OpDefault
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import RESULT_SIZE_LIMIT, Table

    original_init = Table.__init__
    original_query = Table.query

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        if self.range_key_attr:
            self.items = defaultdict(_Partition)

    def query(
        self: Any,
        hash_key: Any,
        range_comparison: str | None,
        range_objs: list[Any],
        limit: int,
        exclusive_start_key: dict[str, Any] | None,
        scan_index_forward: bool,
        projection_expressions: Any,
        index_name: str | None = None,
        consistent_read: bool = False,
        filter_expression: Any = None,
        hash_key_conditions: Any = None,
        range_key_conditions: Any = None,
        **filter_kwargs: Any,
    ) -> Any:
        partition = self.items.get(hash_key) if hash_key is not None else None
        if (
            index_name
            or filter_kwargs
            or not self.range_key_attr
            or (range_key_conditions and len(range_key_conditions) > 1)
            or (range_comparison and range_comparison not in _BISECTABLE)
            or (partition is not None and not isinstance(partition, _Partition))
            or hash_key is None
        ):
            return original_query(
                self,
                hash_key,
                range_comparison,
                range_objs,
                limit,
                exclusive_start_key,
                scan_index_forward,
                projection_expressions,
                index_name=index_name,
                consistent_read=consistent_read,
                filter_expression=filter_expression,
                hash_key_conditions=hash_key_conditions,
                range_key_conditions=range_key_conditions,
                **filter_kwargs,
            )
        if not partition:
            return [], 0, None
        keys, values = partition.sorted_keys()
        low, high = 0, len(keys)
        if range_comparison:
            bounds = [obj.cast_value for obj in range_objs]
            if range_comparison in ("EQ", "="):
                low, high = bisect.bisect_left(values, bounds[0]), bisect.bisect_right(values, bounds[0])
            elif range_comparison in ("LT", "<"):
                high = bisect.bisect_left(values, bounds[0])
            elif range_comparison in ("LE", "<="):
                high = bisect.bisect_right(values, bounds[0])
            elif range_comparison in ("GT", ">"):
                low = bisect.bisect_right(values, bounds[0])
            elif range_comparison in ("GE", ">="):
                low = bisect.bisect_left(values, bounds[0])
            else:  # BETWEEN
                low, high = bisect.bisect_left(values, bounds[0]), bisect.bisect_right(values, bounds[1])
        if exclusive_start_key is not None and self.range_key_attr in exclusive_start_key:
            start = DynamoType(exclusive_start_key[self.range_key_attr]).cast_value
            if scan_index_forward is False:
                high = min(high, bisect.bisect_left(values, start))
            else:
                low = max(low, bisect.bisect_right(values, start))
        positions = range(low, high) if scan_index_forward is not False else range(high - 1, low - 1, -1)
        # Written straight to the response (see _written_item): only a Query answered to a
        # client, with nothing that reads the items afterwards (filter, projection).
        written = (
            getattr(_writing, "on", False)
            and (filter_expression is None or type(filter_expression) is OpDefault)
            and not projection_expressions
        )
        results: list[Any] = []
        documents: list[Any] = []
        result_size = 0
        last_evaluated_key = None
        for position in positions:
            item = partition[keys[position]]
            if len(results) == limit:
                last_evaluated_key = self._get_last_evaluated_key(results[-1], None)
                break
            if written:
                document, size = _written_item(item)
            else:
                size = item.size()
            if result_size + size > RESULT_SIZE_LIMIT:
                last_evaluated_key = self._get_last_evaluated_key(results[-1], None)
                break
            results.append(item)
            if written:
                documents.append(_Written(document))
            result_size += size
        else:
            # As moto's own walk: a full page gets a LastEvaluatedKey while the partition goes
            # on in the direction of the read, even past the range condition.
            beyond = high < len(keys) if scan_index_forward is not False else low > 0
            if results and len(results) == limit and beyond:
                last_evaluated_key = self._get_last_evaluated_key(results[-1], None)
        scanned_count = len(results)
        if written:
            return documents, scanned_count, last_evaluated_key
        results = copy.deepcopy(results)
        if filter_expression is not None:
            results = [item for item in results if filter_expression.expr(item)]
        if projection_expressions:
            results = [item.project(projection_expressions) for item in results]
        return results, scanned_count, last_evaluated_key

    Table.__init__ = init  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]


def install_fast_query_responses() -> None:
    """Query responses: the items written to JSON directly (see the module docstring)."""
    import json

    from moto.core.responses import ActionResult
    from moto.dynamodb import responses as dynamodb_responses

    class ItemsWrittenDirectly(ActionResult):
        def execute_result(self, context: Any) -> Any:
            result = dict(self.result)  # type: ignore[call-overload]
            items = result.pop("Items", None)
            # Everything but the items goes through moto's serializer (headers, status,
            # ConsumedCapacity, LastEvaluatedKey); the items are added to its JSON.
            status, headers, body = ActionResult(result).execute_result(context)
            if items is None or status != 200:
                return status, headers, body
            document = json.loads(body)
            document["Items"] = _encode(items)
            # Freshly built, acyclic documents: the circular-reference check (a third of the
            # encoding time) has nothing to find; the text is the same.
            return status, headers, json.dumps(document, check_circular=False)

    original_query = dynamodb_responses.DynamoHandler.query

    def query(self: Any) -> Any:
        _writing.on = True
        try:
            result = original_query(self)
        finally:
            _writing.on = False
        return ItemsWrittenDirectly(result.result)

    dynamodb_responses.DynamoHandler.query = query  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("-p", "--port", type=int, default=5000, help="port to bind (default 5000)")
    parser.add_argument("-q", "--quiet", action="store_true", help="do not log every request")
    args = parser.parse_args(argv)

    # moto builds some URLs (S3 presigned URLs, ...) from MOTO_PORT; set it
    # before moto is imported, as moto's own server does.
    os.environ.setdefault("MOTO_PORT", str(args.port))

    import moto

    if moto.__version__ != EXPECTED_MOTO_VERSION:
        print(
            f"moto launcher: warning: moto {moto.__version__} installed, "
            f"launcher written for {EXPECTED_MOTO_VERSION}",
            file=sys.stderr,
        )

    disable_instance_tracking()
    install_copy_free_transactions()
    serialize_dynamodb_writes()
    install_fast_query()
    install_fast_query_responses()

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    check_instance_tracking_disabled()

    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    def _stop(signum: int, _frame: Any) -> None:
        # Raised in the main thread, which is inside serve_forever().
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(
        args.host,
        args.port,
        app,
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    host, port = server.server_address[:2]
    print(
        f"moto {moto.__version__} ready on http://{host}:{port} "
        f"(pid {os.getpid()}, instance tracking off)",
        flush=True,
    )
    try:
        server.serve_forever()
    except SystemExit:
        pass
    finally:
        server.server_close()
        print("moto stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
