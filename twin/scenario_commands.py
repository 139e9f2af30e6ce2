"""``twin scenario list|replay|score|leaderboard`` and the instance options of ``twin serve``."""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from twin import validation
from twin.common import progress as shown
from twin.common import wire

if TYPE_CHECKING:
    from twin.scenarios.secret import OrganiserKey
    from twin.scenarios.spec import Scenario
    from twin.server.instances import Instance

log = logging.getLogger(__name__)

#: a server hosting more twins than this gives each a share of this many twins' cache memory
#: (8 x 512 MiB of exit waves and lens kernels; one twin alone keeps its full budget)
CACHED_TWINS = 8
JOURNALS = "journals"  # the folder in the user's data folder where challenge journals go by default


def default_journal_dir() -> Path:
    """Where challenge journals and the organiser's key go unless ``--journal-dir`` says otherwise:
    ``journals`` in the twin's per-user data folder (``~/.local/share/microscope-twin/journals`` on
    Linux), never the folder a command happens to run in; every command that reads journals looks there."""
    from twin.instruments.files import default_data_dir

    return default_data_dir() / JOURNALS


def journal_dir(args: argparse.Namespace) -> Path:
    """The journal folder of ``twin serve``: ``--journal-dir`` or :func:`default_journal_dir`."""
    return Path(args.journal_dir) if args.journal_dir else default_journal_dir()


def add_serve_options(serve: argparse.ArgumentParser) -> None:
    """The challenge options of ``twin serve``."""
    serve.add_argument("--scenario", metavar="NAME_OR_FILE",
                       help="play a challenge (see `twin scenario list`): hidden state drawn from --seed, "
                            "ground truth off, budgets, a journal of every call, a score")
    serve.add_argument("--instance", action="append", default=[], metavar="NAME[=SCENARIO[:SEED]]",
                       help="host an independent twin called NAME (repeat for more); by default it plays "
                            "--scenario from --seed")
    serve.add_argument("--teams", type=int, metavar="N",
                       help="host N independent instances team-01 ... team-N playing --scenario from --seed")
    serve.add_argument("--seed-per-team", action="store_true",
                       help="with --teams: team k plays seed --seed + k - 1, so no two teams share a hidden "
                            "state (an answer cannot be passed on; difficulty varies with the seed)")
    serve.add_argument("--private", action="store_true",
                       help="instances answer to a secret token instead of their name (hand each team "
                            "its token)")
    serve.add_argument("--tokens", metavar="CSV", help="write instance,scenario,seed,token here")
    serve.add_argument("--resume", action="store_true",
                       help="after a restart: each instance carries on its latest journal in --journal-dir "
                            "(its calls are made again, so its twin, budget and score are where the team "
                            "left them) and keeps its token from --tokens")
    serve.add_argument("--journal-dir", metavar="DIR",
                       help="where episodes write their journals (default: journals in the user's data "
                            "folder, ~/.local/share/microscope-twin/journals on Linux)")
    serve.add_argument("--key", metavar="FILE",
                       help="the organiser's secret key: every hidden state is drawn from it and the seed, "
                            "so the seed alone gives nothing away; made on first use, readable by you only; "
                            "keep it to resume, replay and score (default JOURNAL_DIR/organiser.key)")
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="host the instances in N worker processes on this machine (Dask), behind this "
                            "one address; a worker that dies takes only its teams down, who carry on from "
                            "their journals on the others (default 1: every instance in this process)")
    serve.add_argument("--scheduler", metavar="ADDRESS",
                       help="host the instances on the workers of the Dask cluster at this scheduler "
                            "(tcp://HOST:8786); every worker must reach --journal-dir and --data-dir at the "
                            "same path (a shared folder)")
    serve.add_argument("--score-details", action="store_true",
                       help="show a team how its score came about after it answers (true positions, focus, "
                            "frame...: fine when no two teams share a seed); by default the score alone")


def _say(line: str) -> None:
    """A line on stdout that does not break a progress bar on stderr."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stdout)
    sys.stdout.flush()


def key_path(args: argparse.Namespace) -> Path:
    """Where the organiser's key of ``twin serve`` is kept."""
    from twin.scenarios.secret import KEY_FILE

    return Path(args.key) if args.key else journal_dir(args) / KEY_FILE


def _carried_on(name: str, scenario: Scenario, seed: int, folder: Path, key: OrganiserKey,
                key_file: Path) -> Instance:
    """``name``'s instance as its latest journal in ``folder`` left it, or a new one if it has none."""
    from twin.server.instances import Instance, journals_of
    from twin.server.replay import resume

    journals = journals_of(folder, scenario.name, seed, name)
    if not journals:
        _say(f"  {name}: no journal of {scenario.name} seed {seed} in {folder}; a new episode")
        return Instance.playing(name, scenario, seed, folder, key=key)
    done = resume(journals[-1], key_file, progress=True)
    state = "answered" if done.instance.episode.result is not None else "playing"
    calls = f"{done.calls} call{'' if done.calls == 1 else 's'}"
    _say(f"  {name}: carried on {journals[-1].name} ({calls} made again; {state})")
    return done.instance


@dataclass(frozen=True)
class Plan:
    """The instances ``twin serve`` options ask for: name, scenario (as given: a name or file) and seed of
    each, the organiser's key they play with and the journal folder."""

    plays: list[tuple[str, str, int]]
    key: OrganiserKey
    folder: Path


def plan_from(args: argparse.Namespace) -> Plan | None:
    """The instances the options ask for, checked (names, seeds) before any is built; None for a plain
    one-twin server."""
    from twin.server.instances import DEFAULT

    names = list(args.instance)
    if args.teams is not None:
        validation.integer("--teams", args.teams, 1, 500)
        names += [f"team-{k:02d}" + (f"=:{args.seed + k - 1}" if args.seed_per_team else "")
                  for k in range(1, args.teams + 1)]
    elif args.seed_per_team:
        raise ValueError("--seed-per-team needs --teams N")
    if args.private and not args.tokens:
        raise ValueError("--private needs --tokens FILE: each team's secret token is written there "
                         "(readable by you only), never to the console")
    if not names and args.scenario is None:
        if args.resume:
            raise ValueError("--resume carries on challenge episodes; give --scenario, --instance or --teams")
        return None
    if args.scenario is not None and (args.sample != "graphene-defects" or args.ground_truth != "on"
                                      or args.tem_frame or args.afm_frame):
        raise ValueError("--scenario sets the sample, the ground truth and the frames itself; drop --sample, "
                         "--ground-truth, --tem-frame and --afm-frame")
    plays: list[tuple[str, str, int]] = []
    for text in names or [DEFAULT]:
        name, _, given = text.partition("=")
        which, _, seed = given.partition(":")
        which = which or args.scenario
        if which is None:
            raise ValueError(f"--instance {text!r}: name a scenario (NAME=SCENARIO) or give --scenario")
        wire.object_id("twin.tem", name)  # checks the name
        if any(play[0] == name for play in plays):
            raise ValueError(f"--instance {name!r} is given twice")
        try:
            seed = int(seed) if seed else args.seed
        except ValueError:
            raise ValueError(f"--instance {text!r}: the seed after ':' must be an integer, got {seed!r}"
                             ) from None
        validation.integer(f"--instance {text!r} seed", seed, 0, 2**63 - 1)
        plays.append((name, which, seed))
    from twin.scenarios.secret import OrganiserKey

    folder = journal_dir(args)
    key, made = OrganiserKey.load_or_create(key_path(args))
    log.info(f"organiser key {key.id} {'made at' if made else 'read from'} {key_path(args)} (hidden states "
             "come from it: keep it to resume, replay and score)")
    log.info(f"journals {'carried on from' if args.resume else 'written to'} {folder.resolve()}")
    return Plan(plays, key, folder)


def instances_from(args: argparse.Namespace) -> tuple[list[Instance], OrganiserKey] | None:
    """The instances ``twin serve`` options ask for, built in this process, and the organiser's key they
    play with, or None for a plain one-twin server."""
    from twin.scenarios import spec
    from twin.server.instances import Instance

    plan = plan_from(args)
    if plan is None:
        return None
    loaded: dict[str, spec.Scenario] = {}

    def scenario(name: str) -> spec.Scenario:
        if name not in loaded:
            loaded[name] = spec.load(name)
        return loaded[name]

    instances = []
    # replaying many journals (or building many twins) takes a while: a bar with the time left, on a
    # terminal only (a log file gets the per-instance lines alone)
    for name, which, seed in shown.bar(plan.plays, unit="instance", disable=len(plan.plays) <= 1,
                                       desc="carrying on journals" if args.resume else "starting instances"):
        if not args.resume:
            instances.append(Instance.playing(name, scenario(which), seed, plan.folder, key=plan.key))
            continue
        try:
            instances.append(_carried_on(name, scenario(which), seed, plan.folder, plan.key, key_path(args)))
        except ValueError as error:  # one broken journal does not keep every other team waiting
            _say(f"  {name}: NOT SERVED: {error}")
    if not instances:
        raise ValueError("--resume: no instance could be carried on (see above)")
    kept = kept_tokens(args)
    for instance in instances:
        instance.token = kept.get(instance.name) or instance.token
        instance.twin.tem.share_caches(min(1.0, CACHED_TWINS / len(instances)))
        instance.score_details = args.score_details
    write_tokens(args, [(i.name, i.episode.scenario.name, i.episode.seed, i.token) for i in instances])
    return instances, plan.key


def kept_tokens(args: argparse.Namespace) -> dict[str, str]:
    """Instance -> token from the --tokens file, on --resume (teams keep their tokens); else none."""
    if not (args.resume and args.tokens and Path(args.tokens).is_file()):
        return {}
    with open(args.tokens, newline="") as file:
        return {row.get("instance"): row.get("token") for row in csv.DictReader(file) if row.get("token")}


def write_tokens(args: argparse.Namespace, rows: list[tuple[str, str, int, str]]) -> None:
    """Write (instance, scenario, seed, token) rows to the --tokens file, if one is asked for."""
    if not args.tokens:
        return
    try:
        Path(args.tokens).unlink(missing_ok=True)  # made anew, readable by its owner only
        descriptor = os.open(args.tokens, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["instance", "scenario", "seed", "token"])
            writer.writerows(rows)
    except OSError as error:
        raise ValueError(f"--tokens {args.tokens!r} cannot be written: {error}") from None


def add_parser(commands: argparse._SubParsersAction) -> None:
    scenario = commands.add_parser("scenario", help="hackathon challenges: list, replay, score, leaderboard")
    actions = scenario.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the built-in scenarios, one line each")
    listing.set_defaults(run=_list)
    for name, text in (("replay", "make a journal's calls again and check every result is the same"),
                       ("score", "replay a journal and print its score")):
        action = actions.add_parser(name, help=text)
        action.add_argument("journal", help="a journal written by `twin serve --scenario` (.jsonl); a bare "
                                            "file name not found here is looked for in the default journal "
                                            "folder (journals in the user's data folder)")
        action.add_argument("--key", metavar="FILE",
                            help="the event's organiser key (default: organiser.key beside the journal)")
        action.set_defaults(run=_replay)
    board = actions.add_parser("leaderboard", help="scores of every instance on a running server")
    board.add_argument("--host", default=wire.DEFAULT_HOST, help="the server's address (default %(default)s)")
    board.add_argument("--port", type=int, default=wire.DEFAULT_PORT,
                       help="the server's port (default %(default)s)")
    board.add_argument("--csv", metavar="FILE", help="also write the board here (for the prize table)")
    board.add_argument("--key", metavar="FILE",
                       help="the event's organiser key: shows names and seeds (default: organiser.key in "
                            "the default journal folder if it is there, as `twin serve` makes it; without "
                            "it, what every team sees)")
    board.set_defaults(run=_leaderboard)


def _list(_args: argparse.Namespace) -> int:
    """One line per built-in scenario: its name and title, read from the files alone (no twin is built)."""
    from twin.scenarios.catalog import available, title

    for name, path in available().items():
        try:
            print(f"{name:<28}{title(path)}")
        except ValueError as error:
            print(f"{name:<28}(unreadable: {error})")
    return 0


def journal_file(text: str) -> Path:
    """The journal ``text`` names: a path as given, or a bare file name found only in
    :func:`default_journal_dir` (where ``twin serve`` writes them by default)."""
    path = Path(text)
    if path.exists() or path.name != text:
        return path
    kept = default_journal_dir() / text
    return kept if kept.is_file() else path


def _replay(args: argparse.Namespace) -> int:
    from twin.server.replay import replay

    journal = journal_file(args.journal)
    try:
        done = replay(journal, key_file=args.key, progress=True)
    except ValueError as error:
        raise SystemExit(f"twin scenario {args.action}: {error}") from None
    score = "not answered" if done.score is None else f"{done.score:.4f}"
    recorded = "" if done.recorded_score is None else f" (journal: {done.recorded_score:.4f})"
    if args.action == "score":
        print(f"score {score}{recorded}")
    else:
        same = done.calls - len(done.differing)
        where = f" (entries {done.differing[:20]})" if done.differing else ""
        print(f"replayed {done.calls} calls of {journal.name}: {same} identical, "
              f"{len(done.differing)} different{where}; score {score}{recorded}")
    return 0 if done.identical else 1


COLUMNS = ("instance", "scenario", "seed", "score", "calls")


def _leaderboard(args: argparse.Namespace) -> int:
    from clients.challenge import leaderboard
    from twin.scenarios.secret import KEY_FILE, OrganiserKey

    path = Path(args.key) if args.key else default_journal_dir() / KEY_FILE
    try:
        organiser = OrganiserKey.load(path).organiser_token() if args.key or path.is_file() else None
        rows = leaderboard(args.host, args.port, organiser)
    except (ConnectionError, ValueError, PermissionError) as error:
        raise SystemExit(f"twin scenario leaderboard: {error}") from None
    table = [{"rank": rank if row["score"] is not None else "-", **{k: row.get(k) for k in COLUMNS}}
             for rank, row in enumerate(rows, 1)]
    print(f"{'rank':<6}{'instance':<18}{'scenario':<28}{'seed':<8}{'score':<10}calls")
    for row in table:
        score = "-" if row["score"] is None else f"{row['score']:.4f}"
        seed = "-" if row["seed"] is None else row["seed"]
        print(f"{row['rank']!s:<6}{row['instance'] or '-':<18}{row['scenario']:<28}{seed!s:<8}{score:<10}"
              f"{row['calls']}")
    if args.csv:
        try:
            with open(args.csv, "w", newline="") as file:
                writer = csv.DictWriter(file, ["rank", *COLUMNS])
                writer.writeheader()
                writer.writerows(table)
        except OSError as error:
            raise SystemExit(f"twin scenario leaderboard: --csv {args.csv!r} cannot be written: {error}"
                             ) from None
    sys.stdout.flush()
    return 0
