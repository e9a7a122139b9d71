"""`labrig`: provision a fleet of GPU workstations and prove that each one works.

Every value is checked here, before anything runs; ansible-playbook and the other tools are then
started with an argument list, never through a shell, so no value can become a command. The
Makefile's targets (`make provision HOST=ws01`, `make verify`, ...) are aliases that run
`labrig --from-make TARGET`, which reads make's variables from the environment instead of a
command line.

Exit codes: those of the command that ran (ansible-playbook, the verify suite, the fleet report);
2 for a value refused before anything ran.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from labrig import inventory as inventory_module

REPO = Path(__file__).resolve().parents[1]
DEFAULT_INVENTORY = "inventory"
DEFAULT_MONITOR_OUT = "reports/monitoring"
FRAMEWORKS = ("mxnet", "torch")
EXIT_USAGE = 2
BATCH = re.compile(r"[1-9][0-9]*%?(,[1-9][0-9]*%?)*")

# make's variables and the options they stand for. A target reads only the ones it has options for,
# as make's recipes did.
MAKE_VARIABLES = {
    "INVENTORY": "--inventory",
    "HOST": "--host",
    "BATCH": "--batch",
    "MAX_FAIL": "--max-fail",
    "FULL": "--full",
    "CPU_ONLY": "--cpu-only",
    "FRAMEWORK": "--framework",
    "MINUTES": "--minutes",
    "DCGM_LEVEL": "--dcgm-level",
    "RUN": "--run",
    "OPEN": "--open",
    "KEEP": "--keep",
    "OUT": "--out",
    "ARGS": "--ansible-args",
    "DRY_RUN": "--dry-run",
}
MAKE_FLAGS = {"FULL", "CPU_ONLY", "OPEN", "KEEP", "DRY_RUN"}
# make trend HOST=ws01: the host is the command's argument.
MAKE_POSITIONAL = {"trend": "HOST"}


class UsageError(Exception):
    """A value refused before anything ran; the message is the one line the operator sees."""


# --- values --------------------------------------------------------------------------------------


def batch(text: str) -> str:
    if not BATCH.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text}: give a number of hosts (1), a percentage (25%) or a list of them (1,25%,100%)"
        )
    return text


def max_fail(text: str) -> int:
    if not re.fullmatch(r"[0-9]{1,3}", text) or int(text) > 100:
        raise argparse.ArgumentTypeError(
            f"{text}: give the percentage of a batch that may fail (0-100)"
        )
    return int(text)


def minutes(text: str) -> str:
    try:
        number = float(text)
    except ValueError:
        number = float("nan")
    if not re.fullmatch(r"[0-9]*\.?[0-9]+", text) or not number > 0:
        raise argparse.ArgumentTypeError(
            f"{text}: give the burn-in's length in minutes, a positive number (10, 0.5)"
        )
    return text


def ansible_words(text: str) -> list[str]:
    """ARGS as make took it: words, split the way a shell splits them, never run by one."""
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text}: {exc}") from None


# --- the parser ----------------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """An argparse parser whose errors, for `make TARGET VAR=...`, name make's variable."""

    # On the class: argparse builds the subcommands' parsers itself (add_parser). A process parses
    # one command line, so build_parser sets it once.
    make_names: ClassVar[dict[str, str]] = {}

    def error(self, message: str) -> None:  # type: ignore[override]
        for variable, option in self.make_names.items():
            message = message.replace(f"argument {option}: ", f"{variable}=")
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _inventory_options(parser: argparse.ArgumentParser, *, hosts: bool = True) -> None:
    parser.add_argument(
        "-i",
        "--inventory",
        metavar="PATH",
        help=f"the inventory (default: ./{DEFAULT_INVENTORY}; without one, "
        "verify and burn-in check this machine)",
    )
    if hosts:
        parser.add_argument(
            "-l",
            "--host",
            metavar="PATTERN",
            help="a host, a group or an Ansible pattern (ws01,gpu_hopper); default: every host",
        )


def _playbook_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ansible-args",
        metavar="ARGS",
        type=ansible_words,
        default=[],
        help="more ansible-playbook arguments, as one string split into words "
        '(e.g. "--tags nvidia_driver -e labrig_maintenance_ok=true")',
    )
    parser.add_argument(
        "-n", "--dry-run", action="store_true", help="print the command instead of running it"
    )


def _rollout_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--batch",
        type=batch,
        help="roll out in batches: a count, a percentage, or a list of them (1,25%%,100%%)",
    )
    parser.add_argument(
        "--max-fail",
        type=max_fail,
        metavar="PERCENT",
        help="per cent of a batch that may fail before the rollout stops (a batch that fails "
        "whole always stops it)",
    )


def _framework_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cpu-only",
        action="store_true",
        help="run the framework checks on the CPU and skip the GPU checks",
    )
    parser.add_argument(
        "--framework", choices=FRAMEWORKS, help="framework to check (default: as provisioned)"
    )


def build_parser(make_names: dict[str, str] | None = None) -> Parser:
    Parser.make_names = make_names or {}
    parser = Parser(
        prog="labrig",
        description="Provision GPU deep-learning workstations with Ansible and prove each one "
        "works.",
        epilog="`make provision HOST=ws01` and the other make targets run these commands. "
        "Exit status: the command's own; 2 when a value is refused before anything runs.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    provision = sub.add_parser(
        "provision",
        help="install and configure the GPU stack on the hosts",
        description="Run playbooks/provision.yml: preflight, nouveau off, the NVIDIA driver, "
        "CUDA, cuDNN, the BLAS and the framework. A converged host answers from its record "
        "unless --full.",
    )
    _inventory_options(provision)
    _rollout_options(provision)
    provision.add_argument(
        "--full",
        action="store_true",
        help="run every task, not the converged fast path (labrig_fast_path=false)",
    )
    _playbook_options(provision)

    check = sub.add_parser(
        "check",
        help="dry run of provision: what would change on the hosts (--check --diff)",
        description="Run provision in Ansible's check mode with --diff: drift is shown, nothing "
        "is repaired.",
    )
    _inventory_options(check)
    _rollout_options(check)
    _playbook_options(check)

    verify = sub.add_parser(
        "verify",
        help="prove the hosts work (NVML, framework smoke test, MLP on the GPU), then the "
        "fleet report",
        description="Run the verify suite on every host and merge the reports into one fleet "
        "report under reports/. Without an inventory it checks this machine.",
    )
    _inventory_options(verify)
    _framework_options(verify)
    _playbook_options(verify)

    burn_in = sub.add_parser(
        "burn-in",
        help="minutes of full load on every GPU, judged beside verify in the fleet report",
        description="Run `python -m verify burn-in` on the hosts (this machine without an "
        "inventory).",
    )
    _inventory_options(burn_in)
    burn_in.add_argument(
        "--minutes", type=minutes, required=True, help="length of the load (10, 0.5)"
    )
    burn_in.add_argument(
        "--dcgm-level", type=int, choices=(2, 3), help="dcgmi diag level (default 2)"
    )
    _framework_options(burn_in)
    _playbook_options(burn_in)

    report = sub.add_parser(
        "report",
        help="re-render the latest fleet report (or --run ID)",
        description="Print the fleet report's summary and rewrite its files from a stored run.",
    )
    report.add_argument("--run", help="run id (a folder under reports/) or a path")
    report.add_argument("--open", action="store_true", help="open fleet.html on this desktop")

    diff = sub.add_parser(
        "diff",
        help="the checks that changed state between two runs",
        description="Compare two stored runs check by check.",
    )
    diff.add_argument("run_a", help="the earlier run (id or path)")
    diff.add_argument("run_b", help="the later run (id or path)")
    diff.add_argument(
        "--fail-on-regression", action="store_true", help="exit 1 when a check went bad"
    )

    trend = sub.add_parser(
        "trend",
        help="one host's checks across the stored runs",
        description="Each check's state on HOST across the stored runs (changed or failing ones).",
    )
    trend.add_argument("host", help="a host of the stored runs")

    monitor = sub.add_parser(
        "monitor",
        help="Prometheus scrape config and alert rules for the monitored hosts",
        description="Write the scrape config (targets: the inventory's labrig_monitoring hosts) "
        "and the alert rules.",
    )
    _inventory_options(monitor, hosts=False)
    monitor.add_argument(
        "--out", metavar="DIR", help=f"where to write them (default: {DEFAULT_MONITOR_OUT})"
    )

    demo = sub.add_parser(
        "demo",
        help="boot a local fleet host, provision and verify it, show its report (root)",
        description="labrig's main job end to end on one local Debian 12 host this machine "
        "boots (tests/fleet/demo.sh).",
    )
    demo.add_argument("--keep", action="store_true", help="leave the host up afterwards")
    return parser


# --- make ----------------------------------------------------------------------------------------


def argv_from_make(target: str, environ: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """`make TARGET VAR=value ...` as labrig arguments: each variable set (make passes its command
    line variables in the environment) that TARGET has an option for. Returns the arguments and
    the variable each option came from."""
    subparser = _subparsers(build_parser())[target]
    known = {opt for action in subparser._actions for opt in action.option_strings}
    argv, names = [target], {}
    positional = MAKE_POSITIONAL.get(target)
    if positional:
        if not environ.get(positional):
            raise UsageError(f"{positional}=<a host of the stored runs> is required")
        argv.append(environ[positional])
    for variable, option in MAKE_VARIABLES.items():
        value = environ.get(variable, "")
        if variable == positional or option not in known or value == "":
            continue
        names[variable] = option
        argv += [option] if variable in MAKE_FLAGS else [f"{option}={value}"]
    return argv, names


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


# --- running -------------------------------------------------------------------------------------


def _bin(name: str) -> str:
    """A tool of the environment labrig runs in (the checkout's .venv)."""
    return str(Path(sys.executable).parent / name)


def _run(argv: list[str], args: argparse.Namespace) -> int:
    if getattr(args, "dry_run", False):
        print(shlex.join(argv))
        return 0
    sys.stdout.flush()
    sys.stderr.flush()
    # This process becomes the command: its signals, output and exit status are the operator's.
    os.execve(argv[0], argv, os.environ)
    return 0  # not reached


def _inventory(args: argparse.Namespace, shown_as: str) -> Path | None:
    """The inventory to use, or None when there is none (this machine). An inventory named and
    not there is refused."""
    if args.inventory is None:
        default = Path(DEFAULT_INVENTORY)
        return default.resolve() if default.exists() else None
    path = Path(args.inventory)
    if not path.exists():
        raise UsageError(
            f"inventory '{args.inventory}' not found: copy inventory.example to inventory, "
            f"or pass {shown_as}path"
        )
    return path.resolve()


def _shown(args: argparse.Namespace, variable: str) -> str:
    """How the operator writes a value: `HOST=` through make, `--host ` on the command line."""
    return f"{variable}=" if args.from_make else f"{MAKE_VARIABLES[variable]} "


def _playbook(inventory: Path, playbook: str, args: argparse.Namespace) -> list[str]:
    if args.host:
        inventory_module.check_pattern(inventory, args.host, _shown(args, "HOST"))
    argv = [_bin("ansible-playbook"), "-i", str(inventory)]
    if args.host:
        argv += ["--limit", args.host]
    return [*argv, str(REPO / "playbooks" / playbook)]


def _rollout(args: argparse.Namespace) -> list[str]:
    extra = []
    if args.batch:
        extra += ["-e", f"labrig_batch={args.batch}"]
    if args.max_fail is not None:
        extra += ["-e", f"labrig_max_fail={args.max_fail}"]
    return extra


def _framework(args: argparse.Namespace) -> list[str]:
    extra = []
    if args.cpu_only:
        extra += ["-e", "verify_cpu_only=true"]
    if args.framework:
        extra += ["-e", f"verify_framework={args.framework}"]
    return extra


def no_inventory_refusal(command: str, make: bool) -> str:
    again = f"make {command} HOST=localhost ARGS='-e labrig_provision_localhost=true'"
    if not make:
        again = (
            f"labrig {command} --host localhost --ansible-args '-e labrig_provision_localhost=true'"
        )
    return (
        f"{command}: no inventory (./{DEFAULT_INVENTORY} not found), and labrig never provisions "
        "this machine by default.\n"
        f"  Write one: cp inventory.example inventory, list your workstations, then "
        f"{'make' if make else 'labrig'} {command} [{'HOST=ws01' if make else '--host ws01'}].\n"
        f"  To provision this controller itself: {again}"
    )


def cmd_provision(args: argparse.Namespace) -> int:
    checking = args.command == "check"
    inventory = _inventory(args, _shown(args, "INVENTORY"))
    mode = ["--check", "--diff"] if checking else []
    full = ["-e", "labrig_fast_path=false"] if getattr(args, "full", False) else []
    if inventory is None:
        if args.host != "localhost":
            raise UsageError(no_inventory_refusal(args.command, args.from_make))
        argv = [
            _bin("ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            "ansible_python_interpreter=/usr/bin/python3",
            str(REPO / "playbooks" / "provision.yml"),
        ]
        return _run([*argv, *mode, *full, *args.ansible_args], args)
    argv = _playbook(inventory, "provision.yml", args)
    return _run([*argv, *mode, *_rollout(args), *full, *args.ansible_args], args)


def cmd_verify(args: argparse.Namespace) -> int:
    inventory = _inventory(args, _shown(args, "INVENTORY"))
    if inventory is None:
        argv = [sys.executable, "-m", "verify.this_machine"]
        if args.cpu_only:
            argv.append("--cpu-only")
        if args.framework:
            argv += ["--framework", args.framework]
        return _run(argv, args)
    argv = _playbook(inventory, "verify.yml", args)
    return _run([*argv, *_framework(args), *args.ansible_args], args)


def cmd_burn_in(args: argparse.Namespace) -> int:
    inventory = _inventory(args, _shown(args, "INVENTORY"))
    if inventory is None:
        argv = [sys.executable, "-m", "verify", "burn-in", "--minutes", args.minutes]
        if args.cpu_only:
            argv.append("--cpu-only")
        if args.framework:
            argv += ["--framework", args.framework]
        if args.dcgm_level:
            argv += ["--dcgm-level", str(args.dcgm_level)]
        return _run(argv, args)
    extra = ["-e", f"verify_burn_in_minutes={args.minutes}"]
    if args.dcgm_level:
        extra += ["-e", f"verify_dcgm_level={args.dcgm_level}"]
    argv = _playbook(inventory, "burn-in.yml", args)
    return _run([*argv, *_framework(args), *extra, *args.ansible_args], args)


def cmd_report(args: argparse.Namespace) -> int:
    from verify.fleet.__main__ import main as fleet

    code = fleet(["report", "--width", "80", *(["--run", args.run] if args.run else [])])
    html = (Path("reports") / (args.run or "latest")).resolve() / "fleet.html"
    if args.open:
        desktop = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        opener = shutil.which("xdg-open")
        if desktop and opener:
            subprocess.Popen(
                [opener, str(html)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        else:
            print(f"report: no desktop here to open it; the file is {html}")
    return code


def cmd_diff(args: argparse.Namespace) -> int:
    from verify.fleet.__main__ import main as fleet

    regression = ["--fail-on-regression"] if args.fail_on_regression else []
    return fleet(["diff", args.run_a, args.run_b, *regression])


def cmd_trend(args: argparse.Namespace) -> int:
    from verify.fleet.__main__ import main as fleet

    return fleet(["trend", args.host])


def cmd_monitor(args: argparse.Namespace) -> int:
    inventory = _inventory(args, _shown(args, "INVENTORY"))
    if inventory is None:
        raise UsageError(
            f"inventory './{DEFAULT_INVENTORY}' not found: copy inventory.example to inventory, "
            f"or pass {_shown(args, 'INVENTORY')}path"
        )
    out = args.out or DEFAULT_MONITOR_OUT
    script = str(REPO / "scripts" / "monitor_config.py")
    return _run([sys.executable, script, "--inventory", str(inventory), "--out", out], args)


def cmd_demo(args: argparse.Namespace) -> int:
    os.environ["KEEP"] = "1" if args.keep else ""
    return _run([str(REPO / "tests" / "fleet" / "demo.sh")], args)


COMMANDS = {
    "provision": cmd_provision,
    "check": cmd_provision,
    "verify": cmd_verify,
    "burn-in": cmd_burn_in,
    "report": cmd_report,
    "diff": cmd_diff,
    "trend": cmd_trend,
    "monitor": cmd_monitor,
    "demo": cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names: dict[str, str] = {}
    from_make = argv[:1] == ["--from-make"]
    try:
        if from_make:
            if len(argv) != 2 or argv[1] not in COMMANDS:
                raise UsageError(f"--from-make TARGET: TARGET is one of {', '.join(COMMANDS)}")
            argv, names = argv_from_make(argv[1], dict(os.environ))
        args = build_parser(names).parse_args(argv)
        args.from_make = from_make
        return _dispatch(args)
    except (UsageError, inventory_module.InventoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _dispatch(args: argparse.Namespace) -> int:
    # Paths the operator gave are theirs, read from where they stand (an inventory that is not
    # there keeps its name for the error); the inventory by default is ./inventory there, else the
    # checkout's.
    if getattr(args, "inventory", None) and Path(args.inventory).exists():
        args.inventory = str(Path(args.inventory).resolve())
    if getattr(args, "inventory", "") is None and Path(DEFAULT_INVENTORY).exists():
        args.inventory = str(Path(DEFAULT_INVENTORY).resolve())
    if getattr(args, "out", None):
        args.out = str(Path(args.out).resolve())
    # The playbooks, ansible.cfg and scripts are the checkout's: run from its root, with its
    # configuration, as make did.
    os.chdir(REPO)
    os.environ["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    return COMMANDS[args.command](args)
