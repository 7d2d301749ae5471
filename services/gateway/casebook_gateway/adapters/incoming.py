"""A raw upload written to the incoming bucket while it is received: one PUT whose last bytes wait for commit.

One plain PUT rather than a multipart upload, so that nothing can outlive a refusal or a crash: the store
keeps an object only once its declared length has arrived, and the last chunk is held back until the
upload's checks passed and its row is recorded as `receiving` (what the upload sweeper removes). A refused
upload, a client gone mid-body or a gateway killed mid-way closes the connection short of its length, and
the store keeps nothing; a pending multipart upload, by contrast, would stay in the bucket after a crash,
where neither `storage.delete` nor the sweeper sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx

from casebook_platform.storage import Storage

log = logging.getLogger(__name__)

QUEUED_CHUNKS = 16  # chunks waiting for the store (the body arrives in ≤ 256 KiB reads): a few MB at most
_END = b""  # the body is complete


class StreamedPut:
    """One object of a known size, written while its bytes are given.

    `write` never fails the upload: when the store refuses or goes away, the put is marked `broken` and the
    caller stores the object the ordinary way. Until `commit`, the last chunk given stays here, so the
    store has less than the declared length and keeps nothing when the put ends any other way.
    """

    def __init__(self, client: httpx.AsyncClient, url: str, *, size: int, content_type: str) -> None:
        self.size = size
        self.content_type = content_type
        self.given = 0  # bytes given to `write`, the held chunk included
        self.broken = False
        self.head = b""  # the first bytes given (what the caller compares with the checked file)
        self._client = client
        self._held: bytes | None = None
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUED_CHUNKS)
        self._task = asyncio.create_task(client.put(url, content=self._body(), headers={
            "Content-Length": str(size), "Content-Type": content_type}))

    @classmethod
    def start(cls, storage: Storage, key: str, *, size: int, content_type: str, timeout_s: float
              ) -> StreamedPut:
        """Begin the PUT of `key` in the incoming bucket; `timeout_s` bounds each read or write on the
        connection (not the gaps while the caller receives or checks)."""
        url = storage.presigned_put(storage.incoming, key, timedelta(seconds=max(timeout_s * 4, 900)))
        # Plain HTTP needs no TLS context (building one reads the CA bundle, tens of ms for every upload).
        client = httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), verify=url.startswith("https://"))
        return cls(client, url, size=size, content_type=content_type)

    async def _body(self) -> AsyncIterator[bytes]:
        while chunk := await self._queue.get():  # empty: the end (`write` never queues an empty chunk)
            yield chunk

    async def _send(self, chunk: bytes) -> None:
        """Queue a chunk for the store, waiting while the queue is full; a put that ended meanwhile is broken."""
        if not self._queue.full():
            self._queue.put_nowait(chunk)
            return
        put = asyncio.ensure_future(self._queue.put(chunk))
        await asyncio.wait({put, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()
            await self._give_up("the store stopped reading")

    async def write(self, data: bytes) -> None:
        """The next bytes of the object (held until the following write or `commit`)."""
        if self.broken or not data:
            return
        if self.given + len(data) > self.size:
            await self._give_up("more bytes than declared")
            return
        if len(self.head) < 1024:
            self.head += data[:1024 - len(self.head)]
        if self._held is not None:
            await self._send(self._held)
        self._held = data
        self.given += len(data)

    async def commit(self) -> bool:
        """Send the held chunk and wait for the store's answer; True once the object is stored whole."""
        if self.broken or self.given != self.size or self._held is None:
            await self.abort()
            return False
        await self._send(self._held)
        self._held = None
        if not self.broken:
            await self._send(_END)
        if self.broken:
            return False
        try:
            response = await self._task
        except httpx.HTTPError as exc:
            log.warning("streamed put failed: %s", exc)
            return False
        finally:
            await self._client.aclose()
        if response.status_code != 200:
            log.warning("streamed put refused: %s %s", response.status_code, response.text[:200])
            return False
        return True

    async def abort(self) -> None:
        """End the put short of its length: the store keeps nothing. Safe to call more than once."""
        self.broken = True
        self._held = None
        if not self._task.done():
            self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task
        await self._client.aclose()

    async def _give_up(self, why: str) -> None:
        log.info("streamed put given up (%s); the upload is stored once received", why)
        await self.abort()
