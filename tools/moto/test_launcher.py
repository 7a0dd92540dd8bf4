"""The launcher's Query answers are moto's: the same requests sent to the launcher and to moto's
own server (``moto_server``, no patches) give the same documents, for every attribute type,
both directions, limits, start keys, 1 MB pages cut to the byte, projections and filters; and
the one-walk item size of the fast path is moto's ``Item.size()``.

Run: ``.venv/bin/python -m unittest tools/moto/test_launcher.py`` (the integration test
``tests/tests/emulator_launcher.rs`` does).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.request
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import launcher  # noqa: E402

AUTH = (
    "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, "
    "SignedHeaders=host, Signature=0"
)
TABLE = "launcher_check"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, command: list[str], port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/"
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                self.call("ListTables", {})
                return
            except (urllib.error.URLError, ConnectionError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{command[0]} did not start") from None
                time.sleep(0.2)

    def call(self, action: str, body: dict[str, Any]) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.url,
            data=json.dumps(body).encode(),
            headers={
                "X-Amz-Target": f"DynamoDB_20120810.{action}",
                "Content-Type": "application/x-amz-json-1.0",
                "Authorization": AUTH,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


# One item per attribute type and shape the fast path writes itself (and one it leaves to moto).
KINDS: list[dict[str, Any]] = [
    {"s": {"S": "plain"}, "u": {"S": "ünïcødé ✓ 𝄞"}, "e": {"S": ""}},
    {"n": {"N": "42"}, "f": {"N": "-3.25"}, "big": {"N": "123456789012345678901234567890"}},
    {"b": {"B": b64(b"\x00\xff\xfe binary \x80")}, "eb": {"B": b64(b"x")}},
    {"ss": {"SS": ["a", "ß", "𝄞"]}, "ns": {"NS": ["1", "2.5", "-7"]}},
    {"bs": {"BS": [b64(b"\x01\x02"), b64(b"\xff")]}},
    {"t": {"BOOL": True}, "f": {"BOOL": False}, "z": {"NULL": True}},
    {
        "payload": {
            "M": {
                "orderId": {"S": "order-1"},
                "quantity": {"N": "3"},
                "lines": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"k": {"B": b64(b"\x00")}}}]},
                "empty": {"M": {}},
                "none": {"L": []},
                "flags": {"M": {"on": {"BOOL": True}, "gone": {"NULL": True}}},
            }
        }
    },
]


def item(sequence: int, extra: dict[str, Any]) -> dict[str, Any]:
    return {"id": {"S": "agg"}, "seq": {"N": str(sequence)}, **extra}


def decoded(value: dict[str, Any]) -> dict[str, Any]:
    """Binary attribute values as bytes."""
    if set(value) == {"B"} and isinstance(value["B"], str):
        return {"B": base64.b64decode(value["B"])}
    if set(value) == {"BS"} and all(isinstance(v, str) for v in value["BS"]):
        return {"BS": [base64.b64decode(v) for v in value["BS"]]}
    return value


class Sizes(unittest.TestCase):
    """The fast path's one walk: moto's size and moto's conversion of each item."""

    def test_documents_and_sizes_are_motos(self) -> None:
        from moto.dynamodb.models.dynamo_type import DynamoType, Item
        from moto.dynamodb.models.utilities import dynamo_to_dict

        # Binaries as base64 text (as sent) and as bytes (as the server's parser keeps them).
        kinds = KINDS + [json.loads(json.dumps(k), object_hook=decoded) for k in KINDS]
        for number, attrs in enumerate(kinds, start=1):
            stored = item(number, attrs)
            model = Item(DynamoType(stored["id"]), DynamoType(stored["seq"]), stored)
            document, size = launcher._written_item(model)
            with self.subTest(attributes=sorted(attrs), number=number):
                self.assertEqual(size, model.size())
                expected = launcher._encode(dynamo_to_dict(model.attrs))
                self.assertEqual(json.dumps(document), json.dumps(expected))


class AgainstMoto(unittest.TestCase):
    """The same requests to the launcher and to moto's own server give the same documents."""

    servers: list[Server]

    @classmethod
    def setUpClass(cls) -> None:
        python = sys.executable
        moto_server = os.path.join(os.path.dirname(python), "moto_server")
        launcher_port, moto_port = free_port(), free_port()
        cls.servers = []
        try:
            cls.servers.append(
                Server(
                    [python, os.path.join(HERE, "launcher.py"), "-q", "-p", str(launcher_port)],
                    launcher_port,
                )
            )
            cls.servers.append(Server([moto_server, "-p", str(moto_port)], moto_port))
        except Exception:
            cls.tearDownClass()
            raise
        cls.both(
            "CreateTable",
            {
                "TableName": TABLE,
                "BillingMode": "PAY_PER_REQUEST",
                "KeySchema": [
                    {"AttributeName": "id", "KeyType": "HASH"},
                    {"AttributeName": "seq", "KeyType": "RANGE"},
                ],
                "AttributeDefinitions": [
                    {"AttributeName": "id", "AttributeType": "S"},
                    {"AttributeName": "seq", "AttributeType": "N"},
                ],
            },
        )
        # Every kind of attribute, in a partition of 60 items (other partitions around it).
        for sequence in range(1, 61):
            cls.put(item(sequence, KINDS[sequence % len(KINDS)]))
            cls.put({"id": {"S": "other"}, "seq": {"N": str(sequence)}, "x": {"S": "o"}})

    @classmethod
    def tearDownClass(cls) -> None:
        for server in cls.servers:
            server.stop()

    @classmethod
    def both(cls, action: str, body: dict[str, Any]) -> list[tuple[int, Any]]:
        return [server.call(action, body) for server in cls.servers]

    @classmethod
    def put(cls, stored: dict[str, Any]) -> None:
        for status, answer in cls.both("PutItem", {"TableName": TABLE, "Item": stored}):
            assert status == 200, answer

    def same(self, body: dict[str, Any]) -> Any:
        fast, moto = self.both("Query", {"TableName": TABLE, **body})
        self.assertEqual(fast, moto)
        return fast[1]

    def query(self, partition: str, **body: Any) -> Any:
        names = body.pop("names", {})
        values = body.pop("values", {})
        condition = body.pop("condition", "#i = :i")
        return self.same(
            {
                "KeyConditionExpression": condition,
                "ExpressionAttributeNames": {"#i": "id", **names},
                "ExpressionAttributeValues": {":i": {"S": partition}, **values},
                "ConsistentRead": True,
                **body,
            }
        )

    def test_every_attribute_type_both_directions(self) -> None:
        for forward in (True, False):
            answer = self.query("agg", ScanIndexForward=forward, ReturnConsumedCapacity="TOTAL")
            self.assertEqual(answer["Count"], 60)

    def test_limits_and_start_keys_walk_the_same_pages(self) -> None:
        for forward in (True, False):
            start = None
            pages = 0
            while True:
                body: dict[str, Any] = {"ScanIndexForward": forward, "Limit": 7}
                if start is not None:
                    body["ExclusiveStartKey"] = start
                answer = self.query("agg", **body)
                pages += 1
                start = answer.get("LastEvaluatedKey")
                if start is None:
                    break
            self.assertEqual(pages, 9)

    def test_range_conditions(self) -> None:
        seq = {"#s": "seq"}
        for condition, values in [
            ("#i = :i AND #s = :a", {":a": {"N": "5"}}),
            ("#i = :i AND #s < :a", {":a": {"N": "5"}}),
            ("#i = :i AND #s <= :a", {":a": {"N": "5"}}),
            ("#i = :i AND #s > :a", {":a": {"N": "50"}}),
            ("#i = :i AND #s >= :a", {":a": {"N": "50"}}),
            ("#i = :i AND #s BETWEEN :a AND :b", {":a": {"N": "10"}, ":b": {"N": "20"}}),
        ]:
            for forward in (True, False):
                self.query(
                    "agg",
                    condition=condition,
                    names=seq,
                    values=values,
                    ScanIndexForward=forward,
                    Limit=4,
                )

    def test_projections_filters_and_counts(self) -> None:
        self.query("agg", ProjectionExpression="#s, payload", names={"#s": "seq"})
        self.query(
            "agg",
            FilterExpression="attribute_exists(payload)",
            Limit=20,
        )
        self.query("agg", Select="COUNT")
        self.query("missing")

    def test_pages_of_one_megabyte_cut_at_the_same_item(self) -> None:
        from moto.dynamodb.models.dynamo_type import DynamoType, Item

        # Items whose sizes (moto's measure, multibyte text and binaries included) add up to
        # exactly 1,000,000 bytes, then one byte more: the page ends at the same item.
        for partition, over in (("exact", 0), ("over", 1)):
            filler = "é" * 100_000  # 200,000 bytes of UTF-8
            sizes = []
            for sequence in range(1, 5):
                stored = {
                    "id": {"S": partition},
                    "seq": {"N": str(sequence)},
                    "text": {"S": filler},
                    "raw": {"B": b64(bytes(range(256)) * 50)},
                }
                # The server keeps binaries as the bytes its request parser decoded.
                as_kept = {**stored, "raw": {"B": bytes(range(256)) * 50}}
                model = Item(DynamoType(stored["id"]), DynamoType(stored["seq"]), as_kept)
                sizes.append(model.size())
                self.put(stored)
            pad = 1_000_000 - sum(sizes) + over
            last = {
                "id": {"S": partition},
                "seq": {"N": "5"},
                "pad": {"M": {"t": {"S": "x"}}},
            }
            model = Item(DynamoType(last["id"]), DynamoType(last["seq"]), last)
            last["pad"]["M"]["t"]["S"] = "x" * (pad - model.size() + 1)
            self.put(last)
            self.put({"id": {"S": partition}, "seq": {"N": "6"}, "small": {"S": "s"}})
            answer = self.query(partition)
            self.assertEqual(answer["Count"], 5 - over, partition)


if __name__ == "__main__":
    unittest.main()
