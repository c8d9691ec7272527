"""What the fake HTTP/WebSocket servers share: an aiohttp app on a free local port,
started and stopped by `async with` (or start()/stop()) on the caller's event loop."""

from __future__ import annotations

import socket
from typing import Self

from aiohttp import web


def free_port() -> int:
    """A local TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalServer:
    """Subclasses set `self.port` (free_port()) and add their handlers in routes()."""

    port: int
    _runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> Self:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
