"""The live page's web server: Starlette on uvicorn, in a daemon thread of ``twin serve``. The page
follows a server-sent event stream carrying the state whenever it changes (checked a few times a
second: a slow browser gets the newest, never a queue) and fetches the frames it shows."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from twin.server.live.site import LiveAddressTaken, LiveOptions, LiveSite
from twin.validation import brief

STATIC = Path(__file__).parent / "static"
PERIOD = 0.2  # s between looks at the state for the event stream
KEEP_ALIVE = 15.0  # s between comments on a quiet event stream (proxies close silent connections)
NO_STORE = {"Cache-Control": "no-store"}
BACKLOG = 2048  # connections the page's socket holds before they are accepted (uvicorn's default)
MAX_CONNECTIONS = 64  # open at once (each event stream reads the state 5 times a second); more get 503
MAX_BODY_BYTES = 64 << 10  # a control request's body at most


def _failure(error: Exception) -> JSONResponse:
    """An error as the page shows it: its message, with the status its kind calls for."""
    status = 404 if isinstance(error, LookupError) else 403 if isinstance(error, PermissionError) else 400
    return JSONResponse({"error": str(error)}, status_code=status, headers=NO_STORE)


def application(site: LiveSite, stopping: threading.Event) -> Starlette:
    """The page, its static files and its API over ``site``; event streams end once ``stopping`` is set."""

    def page(_request: Request) -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=NO_STORE)

    def state(request: Request) -> Response:
        try:
            return JSONResponse(site.state(request.query_params.get("instance")), headers=NO_STORE)
        except LookupError as error:
            return _failure(error)

    def sample_map(request: Request) -> Response:
        try:
            return JSONResponse(site.sample_map(request.query_params.get("instance")), headers=NO_STORE)
        except LookupError as error:
            return _failure(error)

    def picture(request: Request) -> Response:
        query = request.query_params
        try:
            text = query.get("signal", "1")
            if not text.isdigit() or len(text) > 3:
                raise ValueError(f"signal = {brief(text)}: give a channel number (0 to 999)")
            signal = int(text)
            frame = site.picture(query.get("instance"), request.path_params["channel"],
                                 query.get("trace", "forward"), signal)
        except (LookupError, ValueError) as error:
            return _failure(error)
        return Response(frame, media_type="application/octet-stream", headers=NO_STORE)

    async def events(request: Request) -> Response:
        name = request.query_params.get("instance")
        try:
            await asyncio.to_thread(site.state, name)  # off the loop: a scoreboard may wait for its rows
        except LookupError as error:
            return _failure(error)

        async def stream() -> Any:
            last, quiet = None, 0.0
            while not stopping.is_set():
                text = json.dumps(await asyncio.to_thread(site.state, name), separators=(",", ":"))
                if text != last:
                    last, quiet = text, 0.0
                    yield f"data: {text}\n\n"  # waits while the browser does not read: nothing piles up
                elif quiet >= KEEP_ALIVE:
                    quiet = 0.0
                    yield ": still here\n\n"
                await asyncio.sleep(PERIOD)
                quiet += PERIOD

        return StreamingResponse(stream(), media_type="text/event-stream", headers=NO_STORE)

    async def control(request: Request) -> Response:
        try:
            site.check_control()  # before anything is read
        except PermissionError as error:
            return _failure(error)
        text = b""
        async for chunk in request.stream():
            text += chunk
            if len(text) > MAX_BODY_BYTES:
                return _failure(ValueError(f"the request body holds more than {MAX_BODY_BYTES} bytes; a "
                                           "control request is a small JSON object"))
        try:
            body = json.loads(text)
        except ValueError:
            return _failure(ValueError('the request body must be JSON: {"action", "value", "instance"}'))
        if not isinstance(body, dict):
            return _failure(ValueError("the request body must be a JSON object"))

        def act() -> Any:
            return site.act(body.get("instance"), str(body.get("action")), body.get("value"))

        try:
            result = await asyncio.to_thread(act)  # the instrument works in a worker thread, not the loop
        except (LookupError, PermissionError, ValueError, TypeError, RuntimeError) as error:
            return _failure(error)
        return JSONResponse({"result": json.loads(json.dumps(result, default=float))}, headers=NO_STORE)

    return Starlette(routes=[
        Route("/", page), Route("/api/state", state), Route("/api/map", sample_map),
        Route("/api/picture/{channel}", picture), Route("/api/events", events),
        Route("/api/control", control, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ])


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port``, listening; :class:`LiveAddressTaken` naming them if that fails."""
    sock = None
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)  # connections wait from now on, not from when uvicorn's thread gets going
    except OSError as error:
        if sock is not None:
            sock.close()
        raise LiveAddressTaken(f"the live view cannot listen on {host}:{port} ({error}); choose "
                               "--live-port or --no-live") from None
    return sock


class LiveServer:
    """The page's server, running in a daemon thread until :meth:`stop`."""

    def __init__(self, site: LiveSite, options: LiveOptions, pyro_port: int) -> None:
        """Bind ``options.host`` and port (:class:`LiveAddressTaken` if it is taken; without one, the Pyro
        port + 1 or, taken, any free one) and start serving."""
        if options.port is not None:
            self._socket = _bind(options.host, options.port)
        else:
            try:
                self._socket = _bind(options.host, pyro_port + 1)
            except OSError:
                self._socket = _bind(options.host, 0)
        self.host, self.port = options.host, self._socket.getsockname()[1]
        self._stopping = threading.Event()
        config = uvicorn.Config(application(site, self._stopping), log_config=None, access_log=False,
                                lifespan="off", timeout_graceful_shutdown=1,
                                limit_concurrency=MAX_CONNECTIONS)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="live-view", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def stop(self, timeout: float = 3.0) -> None:
        self._stopping.set()
        self._server.should_exit = True
        self._thread.join(timeout)
        self._socket.close()
