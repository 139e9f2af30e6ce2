"""Command line: ``twin serve`` and ``twin bench``."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clients.connection import INSTANCE_VARIABLE, Connection
from twin import validation
from twin.common import wire
from twin.instruments.clock import Clock
from twin.instruments.files import default_data_dir
from twin.instruments.work import BUSY_WAIT_SECONDS, MAX_CALL_SECONDS, Limits
from twin.sample.catalog import DEFAULT_SAMPLE, SAMPLES
from twin.scenario_commands import add_parser as add_scenario_commands
from twin.scenario_commands import add_serve_options, instances_from, plan_from
from twin.server.doorkeeper import CONNECTIONS_PER_ADDRESS, IDLE_SECONDS

if TYPE_CHECKING:
    from twin.sample.frames import InstrumentFrame
    from twin.server.live.site import LiveOptions

# Only what the parser needs is imported above: listing, help and option errors answer at once, without
# the simulation stack (abTEM, ASE, SciPy, xarray, Dask); each command imports what it runs.
log = logging.getLogger(__name__)


class _Console(logging.StreamHandler):
    """Plain lines on whatever ``sys.stdout`` is when a record arrives (the server's banner and 'ready
    in', status lines of the commands): what ``print`` showed before, now through ``logging``."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass  # always the current stdout

    def flush(self) -> None:
        sys.stdout.flush()


def log_to_console(level: int = logging.INFO) -> None:
    """Show the ``twin`` loggers' records from ``level`` up on stdout, once per process."""
    logger = logging.getLogger("twin")
    logger.setLevel(level)
    if not any(isinstance(handler, _Console) for handler in logger.handlers):
        logger.addHandler(_Console())


def _frame(option: str, text: str | None) -> InstrumentFrame | None:
    """An instrument frame from ``"DEG,X,Y"``."""
    if text is None:
        return None
    try:
        degrees, x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"{option} = {text!r}: give DEG,X,Y (degrees, metres, metres)") from None
    from twin.sample.frames import InstrumentFrame

    return InstrumentFrame(math.radians(degrees), (x, y))


def _serve(args: argparse.Namespace) -> int:
    try:
        validation.integer("--port", args.port, 0, 65535)
        validation.real("--idle-timeout", args.idle_timeout, 1.0, 86400.0, "s")
        validation.integer("--connections-per-address", args.connections_per_address, 1, 100_000)
        tls, secret = _security(args)
        limits = Limits(validation.real("--max-call-seconds", args.max_call_seconds, 1.0, 604800.0, "s"),
                        None if args.memory_limit is None
                        else int(validation.real("--memory-limit", args.memory_limit, 0.1, 65536.0, "GiB")
                                 * 2**30),
                        validation.real("--busy-wait", args.busy_wait, 0.0, 3600.0, "s"))
        if (args.scenario or args.instance) and (args.state != "tem" or args.set):
            raise ValueError("--state and --set start a plain twin; a scenario sets its own starting state")
        validation.integer("seed", args.seed, 0, 2**63 - 1)  # checked again by the twin; here a bad option
        Clock(args.time_scale)  # is refused before the physics (abTEM) is imported
        if not (args.scenario or args.instance or args.teams):
            from twin.sample.catalog import recipe_for

            recipe_for(args.sample)
        validation.integer("--workers", args.workers, 1, 256)
        if args.workers > 1 or args.scheduler:
            return _serve_on_workers(args, limits, tls, secret)
        live = _live_options(args)
        instances, key = instances_from(args) or (None, None)
        from twin.digital_twin import DigitalTwin

        twin = instances[0].twin if instances else DigitalTwin.build(
            sample=args.sample, seed=args.seed, time_scale=args.time_scale, stem_mode=args.stem_mode,
            tem_engine=args.tem_engine,
            holder=args.holder, ground_truth=args.ground_truth == "on",
            tem_frame=_frame("--tem-frame", args.tem_frame), afm_frame=_frame("--afm-frame", args.afm_frame))
        if not instances:
            from twin.starting_state import set_up

            changed = set_up(twin, args.state, tuple(args.set))
            if changed:
                log.info(f"starting state {args.state!r}: {', '.join(changed)}")
    except (ValueError, TypeError, RuntimeError) as error:
        raise SystemExit(f"twin serve: {error}") from None
    on_ready = None
    if args.snapshot:
        from twin.first_look import first_look

        def on_ready(host: str, port: int) -> None:
            def run() -> None:
                try:
                    summary = first_look(host, port, args.snapshot, twin.tem.hardware.spherical_aberration)
                except Exception as error:  # the server keeps serving whatever happens here
                    summary = f"first look failed: {error!r}"
                log.info(summary)

            threading.Thread(target=run, name="first-look", daemon=True).start()

    from twin.server.daemon import serve
    from twin.server.live.site import LiveAddressTaken

    try:
        serve(instances or twin, host=args.host, port=args.port, on_ready=on_ready, private=args.private,
              warm_up_sizes=(1024,) if args.warm_up else (), key=key, idle_seconds=args.idle_timeout,
              connections_per_address=args.connections_per_address,
              data_dir=args.data_dir, limits=limits, tls=tls, secret=secret, live=live)
    except LiveAddressTaken as error:
        raise SystemExit(f"twin serve: {error}") from None
    except OSError as error:
        raise SystemExit(f"twin serve: cannot listen on {args.host}:{args.port}: {error}") from None
    return 0


def _live_options(args: argparse.Namespace) -> LiveOptions | None:
    """How the live page is served (None: ``--no-live``)."""
    if not args.live:
        return None
    from twin.server.live.site import LiveOptions

    port = args.live_port
    port = None if port is None else validation.integer("--live-port", port, 0, 65535)
    return LiveOptions(args.live_host, port, args.live_control)


def _serve_on_workers(args: argparse.Namespace, limits: Limits, tls: Any, secret: str | None) -> int:
    """``twin serve --workers N`` or ``--scheduler ADDRESS``: challenge instances on Dask workers."""
    if args.snapshot:
        raise ValueError("--snapshot images a twin of this process; drop it with --workers or --scheduler")
    if args.live_control:
        raise ValueError("the live view shows only the scoreboard with --workers or --scheduler (the "
                         "instruments live on the workers): drop --live-control")
    live = _live_options(args)
    plan = plan_from(args)
    if plan is None:
        raise ValueError("--workers and --scheduler host challenge instances: give --scenario, --teams or "
                         "--instance")
    from twin.serve_workers import serve_on_workers
    from twin.server.live.site import LiveAddressTaken

    try:
        serve_on_workers(args, plan, limits, tls, secret, live)
    except LiveAddressTaken as error:
        raise SystemExit(f"twin serve: {error}") from None
    except OSError as error:
        raise SystemExit(f"twin serve: {error} (--host {args.host}, --port {args.port}, --scheduler "
                         f"{args.scheduler!r})") from None
    return 0


def _security(args: argparse.Namespace) -> tuple[Any, str | None]:
    """TLS context and connection secret for ``twin serve`` (both required beyond loopback)."""
    from twin.server.security import SECRET_FILE, is_loopback, load_or_create_secret, tls_context

    if bool(args.certificate) != bool(args.private_key):
        raise ValueError("--certificate and --private-key go together (a PEM certificate and its key)")
    tls = tls_context(args.certificate, args.private_key) if args.certificate else None
    secret_file = args.secret
    if not is_loopback(args.host):
        if tls is None:
            raise ValueError(f"--host {args.host} is reachable from other machines: give --certificate and "
                             "--private-key (TLS); a connection secret is made too (or give --secret FILE)")
        secret_file = secret_file or str(Path(args.data_dir or default_data_dir()) / SECRET_FILE)
    if secret_file is None:
        return tls, None
    secret, made = load_or_create_secret(secret_file)
    log.info(f"connection secret {'made at' if made else 'read from'} {secret_file} (owner-only; give it to "
             "the people who may connect: TWIN_SECRET)")
    return tls, secret


def _run(args: argparse.Namespace) -> int:
    from twin.script_runner import run_script

    if (args.state or args.set) and not (args.serve or args.reset):
        raise SystemExit("twin run: --state and --set need --serve (a new twin) or --reset (the running one)")
    if args.reset and not args.serve:
        _reset(args)
    if args.instance:  # every client the script opens joins this instance
        previous = os.environ.get(INSTANCE_VARIABLE)
        os.environ[INSTANCE_VARIABLE] = args.instance
        try:
            run_script(args.script, args.arguments, args.host, args.port)
        finally:
            if previous is None:
                os.environ.pop(INSTANCE_VARIABLE, None)
            else:
                os.environ[INSTANCE_VARIABLE] = previous
        return 0
    if not args.serve:
        run_script(args.script, args.arguments, args.host, args.port)
        return 0
    from twin.server.launcher import ServerProcess

    log.info("starting a twin for this run ...")
    state = ("--state", args.state or "tem", *(option for text in args.set for option in ("--set", text)))
    server = ServerProcess.start("--stem-mode", args.stem_mode, "--tem-engine", args.tem_engine,
                                 "--time-scale", str(args.time_scale), *state,
                                 seed=args.seed)
    try:
        run_script(args.script, args.arguments, server.host, server.port)
    finally:
        server.stop()
    return 0


def _reset(args: argparse.Namespace) -> None:
    """Return the twin ``twin run`` reaches to its start-up state (or ``--state``/``--set``)."""
    connection = Connection(args.host, args.port, args.instance)
    try:
        done = connection[wire.SAMPLE_OBJECT].reset(args.state, args.set or None)
    except (ValueError, TypeError, PermissionError) as error:
        raise SystemExit(f"twin run --reset: {error}") from None
    finally:
        connection.close()
    log.info(f"the twin is back at its start-up state {done['state']!r}"
             + (f": {', '.join(done['set'])}" if done["set"] else ""))


def _generate(args: argparse.Namespace) -> int:
    from twin.datasets import generate, load_config

    try:
        config = load_config(args.config, args.items)
        validation.integer("--workers", args.workers, 1, 256)
        if args.max_new is not None:
            validation.integer("--max-new", args.max_new, 1, 10_000_000)
        report = generate(config, args.out, workers=args.workers, scheduler=args.scheduler,
                          netcdf=args.netcdf, max_new=args.max_new)
    except (ValueError, TypeError) as error:
        raise SystemExit(f"twin generate: {error}") from None
    except OSError as error:  # no scheduler at that address, an unwritable output, ...
        raise SystemExit(f"twin generate: {error} (--scheduler {args.scheduler!r}, --out {args.out!r})"
                         ) from None
    print(f"{report.written} items written to {args.out} ({report.skipped} were already done) in "
          f"{report.seconds:.1f} s with {report.workers} workers: {report.summary()}")
    return 0


def _mcp(args: argparse.Namespace) -> int:
    try:
        from twin.agents.mcp_server import main as serve_tools
    except ImportError as error:
        raise SystemExit(f"twin mcp: {error}; install the agents extra: pip install \".[agents]\"") from None
    serve_tools(args.host, args.port, args.instance, args.images)
    return 0


def _bench(args: argparse.Namespace) -> int:
    if args.hackathon:
        try:
            validation.integer("--teams", args.teams, 1, 500)
            validation.integer("--workers", args.workers, 2, 256)
        except ValueError as error:
            raise SystemExit(f"twin bench: {error}") from None
        from twin.bench_hackathon import main as hackathon_main

        return hackathon_main(args.json, args.teams, args.workers)
    from twin.bench import main as bench_main

    return bench_main(as_json=args.json)


# Options several commands declare alike (``serve`` for itself; ``run`` to reach a twin or, with --serve,
# to start one; ``mcp`` to reach one): one declaration each, the help text the command's own.
_TWIN_OPTIONS: dict[str, dict[str, Any]] = {
    "--host": {"default": wire.DEFAULT_HOST},
    "--port": {"type": int, "default": wire.DEFAULT_PORT},
    "--seed": {"type": int, "default": 0},
    "--time-scale": {"type": float, "default": 0.0},
    "--stem-mode": {"default": "interactive", "choices": ["interactive", "exact", "prism"]},
    "--tem-engine": {"default": "fast", "choices": ["fast", "abtem"]},
    "--instance": {},
}


def _add_twin_option(command: argparse.ArgumentParser, name: str, help: str) -> None:
    """Declare the shared option ``name`` on ``command`` with ``help``."""
    command.add_argument(name, **_TWIN_OPTIONS[name], help=help)


def _add_state_options(command: argparse.ArgumentParser, default: str | None = "tem") -> None:
    command.add_argument("--state", default=default, choices=["tem", "stem", "diffraction", "overnight"],
                         help="start as an operator left the microscope: TEM imaging (the default), STEM "
                              "mode, diffraction, or overnight (beam blanked, valves closed)")
    command.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                         help="start with this setting (SI, or with a unit: "
                              "'optics.scan_field_of_view=8 nm'); repeat for more")


def parser() -> argparse.ArgumentParser:
    """The ``twin`` command line: serve, run, generate, scenario, mcp, bench."""
    parser = argparse.ArgumentParser(prog="twin", description="Digital-twin TEM + AFM server.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve", help="serve the TEM and the AFM over one shared sample",
        description="Serves a simulated TEM/STEM and AFM over one shared virtual sample to clients "
                    "shaped like the vendors' (AutoScript, Nanosurf), on --host:--port; or, with "
                    "--scenario, --instance or --teams, challenges with hidden state, budgets, journals "
                    "and scores. Ctrl-C stops it.",
    )
    _add_twin_option(serve, "--host", "address to listen on (default %(default)s)")
    _add_twin_option(serve, "--port", "TCP port (default %(default)s)")
    _add_twin_option(serve, "--seed", "seed of the sample and all noise (default 0)")
    serve.add_argument("--sample", default=DEFAULT_SAMPLE, metavar="NAME_OR_FILE",
                       help=f"a built-in sample ({', '.join(SAMPLES)}) or a sample file (.yaml); "
                            "default %(default)s")
    serve.add_argument("--ground-truth", default="on", choices=["on", "off"],
                       help="whether clients may read atoms, defects, labels and heights (off for "
                            "challenges; default %(default)s)")
    for name in ("tem", "afm"):
        serve.add_argument(f"--{name}-frame", metavar="DEG,X,Y",
                           help=f"the {name.upper()} stage axes turned by DEG degrees and offset by X, Y (m) "
                                "from the sample's (default 0,0,0)")
    _add_twin_option(serve, "--time-scale",
                     "1 = instrument pace (exposures, scan lines, approach), 0 = instant (default)")
    _add_twin_option(serve, "--stem-mode",
                     "STEM physics: interactive (thin-sample models, fast), exact (abTEM multislice) or "
                     "prism (abTEM PRISM); requests may choose their own (default %(default)s)")
    _add_twin_option(serve, "--tem-engine",
                     "what computes TEM exit waves (images, diffraction): fast (twin's own multislice, "
                     "within ~1 %% of abTEM, several times faster) or abtem (abTEM itself, the reference); "
                     "default %(default)s")
    serve.add_argument("--holder", default="DoubleTilt", choices=["DoubleTilt", "SingleTilt"],
                       help="TEM specimen holder; on SingleTilt beta reads None (default %(default)s)")
    _add_state_options(serve)
    serve.add_argument("--warm-up", action=argparse.BooleanOptionalAction, default=True,
                       help="image the default view (TEM 1024², AFM 256²) before reporting ready, so the "
                            "first acquisitions are quick (default); --no-warm-up reports ready sooner and "
                            "the first acquisition computes it")
    serve.add_argument("--snapshot", metavar="PNG",
                       help="once ready, image the default view with both instruments and save it here")
    serve.add_argument("--data-dir", metavar="DIR",
                       help="files clients save (AFM captures) go below it, whatever folder a script names; "
                            "one subfolder per instance when there are several (default: the user's data "
                            "folder, ~/.local/share/microscope-twin on Linux)")
    serve.add_argument("--max-call-seconds", type=float, default=MAX_CALL_SECONDS, metavar="SECONDS",
                       help="refuse a call whose estimated compute time is longer (default %(default)g)")
    serve.add_argument("--memory-limit", type=float, metavar="GIB",
                       help="memory all running work may hold at once, one call half of it (default: half "
                            "this machine's RAM)")
    serve.add_argument("--busy-wait", type=float, default=BUSY_WAIT_SECONDS, metavar="SECONDS",
                       help="how long an acquisition waits for its instrument (or for memory) while other "
                            "work holds it, before it is refused with what runs (default %(default)g)")
    serve.add_argument("--certificate", metavar="PEM", help="TLS: the server's certificate (chain); required "
                       "on an address beyond this machine, with --private-key")
    serve.add_argument("--private-key", metavar="PEM", help="TLS: the certificate's private key")
    serve.add_argument("--secret", metavar="FILE", help="the connection secret every client must show "
                       "(TWIN_SECRET); made there if missing; beyond loopback one is made in --data-dir")
    serve.add_argument("--idle-timeout", type=float, default=IDLE_SECONDS, metavar="SECONDS",
                       help="close a connection idle this long between calls; clients reconnect on their own "
                            "(default %(default)g)")
    serve.add_argument("--connections-per-address", type=int, default=CONNECTIONS_PER_ADDRESS, metavar="N",
                       help="connections one source address may hold (default %(default)s; raise it when "
                            "every team connects through one NAT)")
    serve.add_argument("--live", action=argparse.BooleanOptionalAction, default=True,
                       help="serve the live view, a web page of the latest images, a map of the sample, "
                            "the instruments' state and (with scenarios) the scoreboard (default: on; its "
                            "address is printed at start-up)")
    serve.add_argument("--live-host", default=wire.DEFAULT_HOST, metavar="ADDRESS",
                       help="address the live view listens on (default %(default)s: this machine only)")
    serve.add_argument("--live-port", type=int, metavar="PORT",
                       help="the live view's TCP port (default: --port + 1, or a free one if that is taken)")
    serve.add_argument("--live-control", action="store_true",
                       help="let the live page move the TEM stage, focus, acquire and start AFM scans "
                            "(demos; loopback only, never in a challenge; default: read-only)")
    add_serve_options(serve)
    serve.set_defaults(run=_serve)

    run = commands.add_parser(
        "run", help="run a script written for AutoScript or Nanosurf against the twin, unchanged",
        description="Runs SCRIPT, written for the instrument, unchanged: the vendors' module names "
                    "(AutoScript: autoscript_tem_microscope_client, autoscript_core, "
                    "autoscript_tem_toolkit; Nanosurf: nanosurf, nanosurf.com_proxy, nanosurf.studio) "
                    "map to this project's clients for this run only, and every connection the script "
                    "opens goes to the twin at --host:--port, whatever address it names.",
    )
    run.add_argument("script", help="the Python script")
    run.add_argument("arguments", nargs=argparse.REMAINDER, help="arguments passed to the script")
    _add_twin_option(run, "--host", "the twin's address (default %(default)s)")
    _add_twin_option(run, "--port", "the twin's port (default %(default)s)")
    _add_twin_option(run, "--instance", "the twin instance (name or token) on a server hosting several")
    run.add_argument("--serve", action="store_true", help="start a twin for the run and stop it afterwards")
    run.add_argument("--reset", action="store_true",
                     help="first return the running twin to its start-up state (both instruments, the sample "
                          "undamaged, the clock at zero; then --state and --set if given, else the server's)")
    _add_twin_option(run, "--seed", "with --serve: the twin's seed")
    _add_state_options(run, default=None)
    _add_twin_option(run, "--stem-mode", "with --serve: the twin's STEM physics")
    _add_twin_option(run, "--tem-engine", "with --serve: what computes the twin's TEM exit waves")
    _add_twin_option(run, "--time-scale",
                     "with --serve: wall-clock seconds per instrument second (0, the default: instant; 1: as "
                     "slow as the instrument; 0.01: a hundred times faster, and a script's own pauses count "
                     "as instrument time, as a parked probe's dwell does)")
    run.set_defaults(run=_run)

    generate = commands.add_parser(
        "generate", help="write paired TEM + AFM items with ground truth to Zarr, on Dask distributed",
        description="Makes the items CONFIG describes (sample, count, seed, ranges of imaging conditions) "
                    "on a local Dask cluster (or --scheduler) and writes them to a Zarr store; an existing "
                    "store of the same config is resumed, skipping the items already done.",
    )
    generate.add_argument("config", help="dataset config (.yaml)")
    generate.add_argument("--out", required=True, help="the Zarr store to write (a directory)")
    generate.add_argument("--workers", type=int, default=2,
                          help="local single-threaded worker processes (default %(default)s)")
    generate.add_argument("--scheduler", help="address of an existing Dask scheduler instead")
    generate.add_argument("--items", type=int, help="override the config's item count")
    generate.add_argument("--max-new", type=int, help="stop after this many new items (resume later)")
    generate.add_argument("--netcdf", action="store_true", help="also write OUT.nc once every item is done")
    generate.set_defaults(run=_generate)

    add_scenario_commands(commands)

    mcp = commands.add_parser("mcp", help="serve the instruments as MCP tools over stdio (for LLM agents)",
                              description="An MCP server on stdin/stdout whose tools (stage, defocus, "
                                          "camera, STEM, AFM approach/scan/line, challenge) drive the twin "
                                          "at --host:--port through the clients.")
    _add_twin_option(mcp, "--host", "the twin's address (default %(default)s)")
    _add_twin_option(mcp, "--port", "the twin's port (default %(default)s)")
    _add_twin_option(mcp, "--instance", "the twin instance (name or token) on a server hosting several")
    mcp.add_argument("--images", metavar="DIR",
                     help="where acquisitions are saved as .npy (default: a temp dir)")
    mcp.set_defaults(run=_mcp)

    bench = commands.add_parser("bench", help="measure acquisition, transport and start-up speed")
    bench.add_argument("--json", action="store_true", help="print the figures as JSON")
    bench.add_argument("--hackathon", action="store_true",
                       help="instead: --teams teams, each a TEM 1024² and a HAADF 256² image at once, on one "
                            "`twin serve` process beside --workers worker processes, the front door's cost "
                            "per call and a restart carrying on every journal")
    bench.add_argument("--teams", type=int, default=40, metavar="N", help="with --hackathon (default 40)")
    bench.add_argument("--workers", type=int, default=2, metavar="N", help="with --hackathon (default 2)")
    bench.set_defaults(run=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "serve":  # before any other thread allocates: the server's one heap
        wire.keep_freed_memory(one_arena=True)
    if args.command != "mcp":  # MCP speaks on stdout: nothing else may write there
        log_to_console()
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
