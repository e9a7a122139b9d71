#!/usr/bin/env python3
"""Write the `labrig` command reference from the command's own --help: docs/commands.md (every
command's help in full) and the README's list of commands (one line each). `--check` fails when
either is stale, naming the file and the command that rewrites it (`make docs`)."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from labrig import cli  # noqa: E402

COMMANDS_MD = REPO / "docs" / "commands.md"
README = REPO / "README.md"
BEGIN = "<!-- commands: written by scripts/cli_reference.py from `labrig --help` (make docs) -->"
END = "<!-- end of commands -->"
# argparse wraps help to the terminal; the reference is wrapped the same everywhere.
WIDTH = "100"


def help_text(parser: argparse.ArgumentParser) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        parser.print_help()
    return out.getvalue().rstrip() + "\n"


def commands_md() -> str:
    parser = cli.build_parser()
    commands = cli._subparsers(parser)
    lines = [
        "# The `labrig` command",
        "",
        "Written by `scripts/cli_reference.py` from the command's own `--help` (`make docs`; "
        "`make lint` fails when it is stale).",
        "",
        "Each make target below is an alias: `make provision HOST=ws01 BATCH=1` runs `labrig "
        "provision --host ws01 --batch 1`. make's variables and the options they stand for:",
        "",
        "| make variable | option |",
        "|---|---|",
    ]
    for variable, option in cli.MAKE_VARIABLES.items():
        lines.append(f"| `{variable}` | `{option}` |")
    lines += ["", "`make trend HOST=ws01` is `labrig trend ws01`.", "", "## labrig", ""]
    lines += ["```", help_text(parser).rstrip(), "```", ""]
    for name, sub in commands.items():
        lines += [f"## labrig {name}", "", "```", help_text(sub).rstrip(), "```", ""]
    return "\n".join(lines)


def readme_block() -> str:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in action._choices_actions}
    rows = [f"labrig {name:<10} {helps[name]}" for name in cli._subparsers(parser)]
    return "\n".join([BEGIN, "```", *rows, "```", END])


def rewritten_readme(text: str) -> str:
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + readme_block() + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when a file is stale")
    args = parser.parse_args(argv)
    os.environ["COLUMNS"] = WIDTH
    wanted = {COMMANDS_MD: commands_md(), README: rewritten_readme(README.read_text())}
    stale = [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(REPO)} is stale: run make docs", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path])
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
