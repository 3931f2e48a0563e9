"""A lean Redis pipeline for the worker's per-batch round trips: raw commands, one write, replies in order.

redis-py's ``Pipeline`` spends several microseconds of Python on every command
(command objects, response callbacks, per-reply hooks, ``SCRIPT EXISTS`` before
each execution with a script in it); a worker sends thousands of commands per
batch. Here commands are packed as RESP by hand, written at once over one pooled
connection of the client, and the replies are read back undecoded (bytes, ints,
lists). An error reply takes its command's place as a ``ResponseError``.

>>> pack([(b"SET", b"k", 7), ("GET", "k")])
b'*3\\r\\n$3\\r\\nSET\\r\\n$1\\r\\nk\\r\\n$1\\r\\n7\\r\\n*2\\r\\n$3\\r\\nGET\\r\\n$1\\r\\nk\\r\\n'
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

#: One command's arguments: bytes as they are, ``str`` as UTF-8, ``int`` in decimal.
Command = Sequence[bytes | str | int]


def _arg(value: bytes | str | int) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return b"%d" % value


def pack(commands: Sequence[Command]) -> bytes:
    """The RESP encoding of ``commands``."""
    out: list[bytes] = []
    for command in commands:
        out.append(b"*%d\r\n" % len(command))
        for value in command:
            arg = _arg(value)
            out.append(b"$%d\r\n%b\r\n" % (len(arg), arg))
    return b"".join(out)


async def round_trip(client: aioredis.Redis, commands: Sequence[Command], timeout: float) -> list[Any]:
    """Send ``commands`` in one write and return their replies in order, all within ``timeout`` seconds.

    A connection that failed or timed out mid-way is closed, never reused: its
    replies would be out of step.
    """
    if not commands:
        return []
    pool = client.connection_pool
    connection = await pool.get_connection()
    try:
        async with asyncio.timeout(timeout):
            await connection.send_packed_command(pack(commands), check_health=False)
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(await connection.read_response(disable_decoding=True))
                except ResponseError as exc:
                    replies.append(exc)
    except BaseException:
        await connection.disconnect(nowait=True)
        raise
    finally:
        await pool.release(connection)
    return replies


def raise_errors(replies: Sequence[Any]) -> None:
    """Raise the first error reply of a round trip (its commands are retried as a whole)."""
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply
