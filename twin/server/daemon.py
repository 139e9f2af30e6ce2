"""Run one twin behind one Pyro5 daemon."""

from __future__ import annotations

import hmac
import logging
import signal
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import Pyro5
from Pyro5.api import Daemon, expose
from Pyro5.core import DAEMON_NAME
from Pyro5.server import DaemonObject
from Pyro5.svr_threads import SocketServer_Threadpool

from twin.common import wire
from twin.digital_twin import DigitalTwin
from twin.instruments.files import default_data_dir
from twin.instruments.work import Limits, duration, fft_seconds_per_unit
from twin.scenarios.secret import OrganiserKey
from twin.server.doorkeeper import CONNECTIONS_PER_ADDRESS, IDLE_SECONDS, Doorkeeper
from twin.server.instances import DEFAULT, HubService, Instance, object_ids
from twin.server.live.site import LiveOptions, LiveSite

if TYPE_CHECKING:
    from twin.server.live.web import LiveServer

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 512  # open client connections at least (an 80-person hackathon, a few clients each) ...
CONNECTIONS_PER_INSTANCE = 32  # ... and this many per hosted instance (notebooks, agents, re-run cells)
MAX_MESSAGE_BYTES = 256 << 20  # a 4096² float64 frame and then some

SNIPPET = """\
Paste into Python:
    from clients.tem import TemMicroscopeClient
    from clients.tem.enumerations import CameraType
    microscope = TemMicroscopeClient()
    microscope.connect("{host}", {port}{instance})
    image = microscope.acquisition.acquire_camera_image(CameraType.BM_CETA, 1024, 0.1)

    from clients.afm import SPM
    spm = SPM("{host}", {port}{instance})
    spm.application.Approach.StartApproach()
    spm.application.Scan.StartFrameUp()
    topography = spm.get_frame(channel=spm.ScanChannel.Topography)
"""


def allow_open_files(count: int) -> int:
    """Raise this process's soft limit on open files to ``count`` where the hard limit allows (many
    desktops start servers at 1024); returns the limit now in force."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return count
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= count:
        return soft
    wanted = count if hard == resource.RLIM_INFINITY else min(count, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError):
        return soft
    return wanted


@expose
class DiscreetDaemonObject(DaemonObject):
    """Pyro's own daemon object, listing only the shared objects: on a private server the other ids
    carry the teams' tokens."""

    def registered(self) -> list[str]:
        return [i for i in super().registered() if i in (DAEMON_NAME, wire.HUB_OBJECT)]


class TwinDaemon(Daemon):
    """Pyro5's daemon, with a :class:`Doorkeeper` in front of its workers, telling a client why its call
    failed but not where in the server: the traceback (with the server's install paths) goes to the
    server's log, the message to the client."""

    def __init__(self, *args: Any, idle_seconds: float = IDLE_SECONDS,
                 connections_per_address: int = CONNECTIONS_PER_ADDRESS, tls: ssl.SSLContext | None = None,
                 secret: str | None = None, **kwargs: Any) -> None:
        """``tls``: encrypt every connection with this context; ``secret``: the connection secret every
        client must show in its handshake (``TWIN_SECRET`` on the client side)."""
        super().__init__(*args, **kwargs)
        server = self.transportServer
        if not isinstance(server, SocketServer_Threadpool):
            raise TypeError(f"the twin serves with Pyro5's thread pool, not {type(server).__name__}")
        server.pool = self.doorkeeper = Doorkeeper(server.pool, connections_per_address, idle_seconds, tls)
        self._secret = secret

    def validateHandshake(self, conn: Any, data: Any) -> dict[str, float]:
        """Check the client's connection secret (where the server has one), and tell the client how
        long its connection may stay idle (it reconnects before that)."""
        if self._secret is not None and not (
                isinstance(data, str) and hmac.compare_digest(data.encode(), self._secret.encode())):
            raise PermissionError("this twin needs its connection secret: set TWIN_SECRET to the contents of "
                                  "the secret file the organiser gave you")
        return {"idle_seconds": self.doorkeeper.idle_seconds}

    def _sendExceptionResponse(self, connection: Any, seq: int, serializer_id: int, exc_value: BaseException,
                               tbinfo: list[str] | None, flags: int = 0, annotations: Any = None) -> None:
        expected = isinstance(exc_value, (ValueError, TypeError, PermissionError, RuntimeError, KeyError))
        log.log(logging.DEBUG if expected else logging.ERROR, "a call failed:\n%s", "".join(tbinfo or ()))
        super()._sendExceptionResponse(connection, seq, serializer_id, exc_value, [], flags, annotations)


def single_threaded_blas() -> None:
    """Run BLAS and LAPACK on the calling thread only, for the rest of the process. The twin's BLAS work is
    small (lattice sites through 2 x 2 transforms, the z-loop's matrix exponential): splitting it over
    threads never pays, and on a busy machine (calls of many instances at once, other processes) waking
    OpenBLAS's threads costs up to a hundred times the work itself. The results are the same; FFTs keep
    their own workers."""
    import scipy.linalg  # noqa: F401 - SciPy's own OpenBLAS: loaded now, so that the limit reaches it
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")


def ready_line(serving: float, accepting: float, warm: float) -> str:
    """'ready in ...' counted from the command's start (the process's creation, so Python's start and
    the imports count), with what took the time; the arguments are ``perf_counter`` readings taken when
    :func:`serve` began, when the daemon accepted calls and when the warm-up ended."""
    since_process = time.time() - psutil.Process().create_time()
    loading = max(since_process - (warm - serving), 0.0)
    return (f"ready in {since_process:.1f} s since the command (Python and the simulation stack "
            f"{loading:.1f} s, the twin and its server {accepting - serving:.1f} s, warm-up "
            f"{warm - accepting:.1f} s; calls were accepted from {loading + accepting - serving:.1f} s on). "
            "Ctrl-C to stop")


def serve(
    instances: DigitalTwin | list[Instance],
    host: str = wire.DEFAULT_HOST,
    port: int = wire.DEFAULT_PORT,
    warm_up_sizes: tuple[int, ...] = (1024,),
    on_ready: Callable[[str, int], None] | None = None,
    private: bool = False,
    key: OrganiserKey | None = None,
    idle_seconds: float = IDLE_SECONDS,
    connections_per_address: int = CONNECTIONS_PER_ADDRESS,
    data_dir: str | Path | None = None,
    limits: Limits | None = None,
    tls: ssl.SSLContext | None = None,
    secret: str | None = None,
    live: LiveOptions | None = None,
) -> None:
    """Serve a twin (or several :class:`Instance`) until SIGINT or SIGTERM; logs (INFO, logger
    ``twin.server.daemon``) the URIs, a client snippet, 'ready in ...' once warm and 'stopped'.
    ``private``: instances answer to their secret token instead of their name; ``key``: the
    organiser's key (its holder may read the full leaderboard); ``idle_seconds``: how long
    a connection may wait between calls; ``connections_per_address``: what one source address may hold;
    ``data_dir``: the folder every file a client asks for is written under (one subfolder per instance
    when there are several); ``limits``: what one call may compute and what running work may hold at
    once, shared by every instance (default :class:`Limits`); ``tls``, ``secret``: see
    :class:`TwinDaemon` (``twin serve`` requires both on an address beyond this machine); ``live``: serve
    the live page as these options say (none: no page).

    ``warm_up_sizes``: the TEM image sizes (pixels) computed for the default view before 'ready' (with
    a 256² AFM frame), so the first acquisitions are quick; none: only this machine's speed is measured.
    ``on_ready(host, port)`` is called once warm, with the address actually bound.
    """

    started = time.perf_counter()
    single_threaded_blas()
    wire.keep_freed_memory(one_arena=True)  # in effect when `twin serve` made it first (cli.main)
    data_dir = default_data_dir() if data_dir is None else data_dir
    if isinstance(instances, DigitalTwin):
        instances = [Instance(DEFAULT, instances)]
    limits = limits or Limits()
    for instance in instances:
        shared = len(instances) > 1 or instance.episode is not None
        instance.twin.afm.files_root = Path(data_dir).resolve() / (instance.name if shared else "")
        instance.twin.tem.limits = limits
    daemon = open_daemon(host, port, len(instances), private, idle_seconds, connections_per_address, tls,
                         secret)
    daemon.register(HubService(instances, private, key), wire.HUB_OBJECT)
    for instance in instances:
        handle = instance.token if private else instance.name
        for target, object_id in instance.object_ids(handle).items():
            daemon.register(instance.objects[target], object_id)
    twin = instances[0].twin
    seed = twin.seed if instances[0].episode is None else instances[0].episode.seed  # the public one
    log.info(f"Digital twin: sample '{twin.sample.name}', seed {seed}, time scale {twin.clock.time_scale:g}")
    several = len(instances) > 1 or instances[0].episode is not None
    announce(daemon, instances[0].name, [i.row(seeds=True) for i in instances] if several else None,
             private, data_dir, limits, idle_seconds, connections_per_address, tls, secret)
    live_server = None
    if live is not None:
        live_server = open_live(LiveSite(instances, private, live.control), live, daemon,
                                "control from the page allowed" if live.control else "read-only")
    accepting = time.perf_counter()

    def warm_up() -> None:
        fft_seconds_per_unit()  # this machine's speed, for every estimate
        if warm_up_sizes:
            twin.tem.warm_up(warm_up_sizes)
            twin.afm.topography(twin.afm.scan_window(), 256, 256, twin.afm.settings.get("twin.tip_radius"))
        log.info(ready_line(started, accepting, time.perf_counter()))
        if on_ready is not None:
            on_ready(*bound_address(daemon))

    try:
        run(daemon, warm_up)
    finally:
        if live_server is not None:
            live_server.stop()


def open_live(site: LiveSite, options: LiveOptions, daemon: TwinDaemon, note: str) -> LiveServer:
    """The live page of ``site`` served as ``options`` say (beside ``daemon``'s port), its address logged
    with ``note``; if its address is taken, ``daemon`` is closed and :class:`LiveAddressTaken` raised."""
    from twin.server.live.web import LiveServer

    try:
        live_server = LiveServer(site, options, bound_address(daemon)[1])
    except OSError:  # the live view's port is taken: nothing serves
        daemon.close()
        raise
    log.info(f"Live view: open {live_server.url} in a browser ({note})")
    return live_server


def open_daemon(host: str, port: int, instances: int, private: bool, idle_seconds: float,
                connections_per_address: int, tls: ssl.SSLContext | None, secret: str | None) -> TwinDaemon:
    """A :class:`TwinDaemon` listening at ``host:port`` with room for ``instances`` instances' clients, its
    calls in msgpack (Pyro5 configured for it, in this process)."""
    wire.install()
    Pyro5.config.MAX_MESSAGE_SIZE = MAX_MESSAGE_BYTES
    # one thread and one file descriptor per open client connection
    Pyro5.config.THREADPOOL_SIZE = max(MAX_CONNECTIONS, CONNECTIONS_PER_INSTANCE * instances)
    allow_open_files(Pyro5.config.THREADPOOL_SIZE + 256)
    wire.accept_only_msgpack()
    return TwinDaemon(host=host, port=port, interface=DiscreetDaemonObject if private else DaemonObject,
                      idle_seconds=idle_seconds, connections_per_address=connections_per_address, tls=tls,
                      secret=secret)


def bound_address(daemon: Daemon) -> tuple[str, int]:
    """The host and port ``daemon`` actually listens on."""
    bound_host, bound_port = daemon.locationStr.rsplit(":", 1)
    return bound_host, int(bound_port)


def announce(daemon: Daemon, first_name: str, rows: list[dict[str, Any]] | None, private: bool,
             data_dir: str | Path, limits: Limits, idle_seconds: float, connections_per_address: int,
             tls: ssl.SSLContext | None, secret: str | None) -> None:
    """Log the first instance's URIs, the instances (``rows``: their organiser's rows, None for a plain
    one-twin server), where files go, the connections' security and limits, and a client snippet."""
    bound_host, bound_port = bound_address(daemon)
    first = "YOUR-TOKEN" if private else first_name  # tokens go to the --tokens file, never the log
    for name, object_id in object_ids(("tem", "afm", "sample", *(("episode",) if rows and rows[0]["scenario"]
                                                                 else ())), first).items():
        label = name.upper() if name in ("tem", "afm") else name
        log.info(f"  {label:<8}PYRO:{object_id}@{bound_host}:{bound_port}")
    if rows is not None:
        log.info(f"{len(rows)} instance(s): name, scenario, seed (clients connect with "
            f"{'instance=TOKEN, each team its own from the tokens file' if private else 'instance=NAME'})")
        for row in rows:
            log.info(f"  instance {row['instance']:<16}{row['scenario'] or '-':<28}{row.get('seed')!s}")
    log.info(f"Files clients save are kept under {Path(data_dir).resolve()}")
    if tls is not None or secret is not None:
        log.info(f"Connections: {'TLS-encrypted' if tls else 'NOT encrypted'}, "
            f"{'a connection secret required' if secret else 'no connection secret'} (clients set TWIN_CA to "
            "the server's certificate and TWIN_SECRET to the secret)")
    log.info(f"Limits: a call may compute {duration(limits.max_call_seconds)} and hold "
        f"{limits.call_bytes / 2**30:.3g} GiB, all running work {limits.memory_bytes / 2**30:.3g} GiB; "
        f"idle connections close after {duration(idle_seconds)}, {connections_per_address} per address")
    log.info(SNIPPET.format(host=bound_host, port=bound_port,
                       instance="" if first == DEFAULT else f", instance={first!r}"))


def run(daemon: Daemon, warm_up: Callable[[], None]) -> None:
    """Serve ``daemon``'s calls until SIGINT or SIGTERM, running ``warm_up`` meanwhile on a thread; log
    'stopped' at the end."""

    def stop(_signum: int, _frame: object) -> None:
        threading.Thread(target=daemon.shutdown, daemon=True).start()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    threading.Thread(target=warm_up, name="warm-up", daemon=True).start()
    try:
        daemon.requestLoop()
    finally:
        daemon.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("stopped")
