"""A lean Redis pipeline for the worker's per-batch round trips: raw commands, one write, replies in order.

redis-py's ``Pipeline`` spends several microseconds of Python on every command
(command objects, response callbacks, per-reply hooks, ``SCRIPT EXISTS`` before
each execution with a script in it); a worker sends thousands of commands per
batch. Here commands are packed as RESP by hiredis, written at once over one pooled
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
from hiredis import pack_command
from redis.exceptions import ResponseError

#: One command's arguments: bytes as they are, ``str`` as UTF-8, ``int`` in decimal.
Command = Sequence[bytes | str | int]


def pack(commands: Sequence[Command]) -> bytes:
    """The RESP encoding of ``commands`` (hiredis packs each command in C)."""
    return b"".join([pack_command(tuple(command)) for command in commands])


class Exchange:
    """Commands written over one pooled connection, their replies read back in parts, in order.

    What :func:`round_trip` does in one go, split so that a caller can work between
    reading the first replies and the rest (Redis runs the later commands meanwhile).
    Each :meth:`send` and :meth:`read` must finish within ``timeout`` seconds. Call
    :meth:`close` at the end: a connection that failed, timed out or still owes replies
    is closed, never reused (its replies would be out of step).
    """

    def __init__(self, client: aioredis.Redis, timeout: float) -> None:
        self.pool = client.connection_pool
        self.timeout = timeout
        self.connection: Any = None
        self.owed = 0

    async def send(self, commands: Sequence[Command]) -> None:
        """Write ``commands`` at once; their replies follow those of the commands sent before."""
        if not commands:
            return
        if self.connection is None:
            self.connection = await self.pool.get_connection()
        self.owed += len(commands)
        async with asyncio.timeout(self.timeout):
            await self.connection.send_packed_command(pack(commands), check_health=False)

    async def read(self, n: int) -> list[Any]:
        """The next ``n`` replies, undecoded; an error reply takes its command's place as a ``ResponseError``."""
        replies: list[Any] = []
        async with asyncio.timeout(self.timeout):
            for _ in range(n):
                try:
                    replies.append(await self.connection.read_response(disable_decoding=True))
                except ResponseError as exc:
                    replies.append(exc)
                self.owed -= 1
        return replies

    async def close(self) -> None:
        """Give the connection back to the pool, or close it if it still owes replies."""
        connection, self.connection = self.connection, None
        if connection is None:
            return
        try:
            if self.owed:
                await connection.disconnect(nowait=True)
        finally:
            await self.pool.release(connection)


async def round_trip(client: aioredis.Redis, commands: Sequence[Command], timeout: float) -> list[Any]:
    """Send ``commands`` in one write and return their replies in order (each part within ``timeout`` seconds)."""
    exchange = Exchange(client, timeout)
    try:
        await exchange.send(commands)
        return await exchange.read(len(commands))
    finally:
        await exchange.close()


def raise_errors(replies: Sequence[Any]) -> None:
    """Raise the first error reply of a round trip (its commands are retried as a whole)."""
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply
