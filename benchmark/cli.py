"""``drkd-bench``: train one run, run grids, tune, report, measure speed.

YAML configs supply defaults; flags override. Bad input gives one line and exit code 2. Each
command is one module of :mod:`benchmark.commands` (its flags and its handler side by side); this
module builds the parser from them and dispatches.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from benchmark.commands import COMMANDS
from benchmark.commands.common import Parser, UsageError

EPILOG = """examples:
  drkd-bench list
  drkd-bench train --dataset digits --method drkd --set teacher=online --epochs 10
  drkd-bench grid quick            # the embedded quick grid, then the report in results/
  drkd-bench grid quick --dry-run  # the cells and their order
  drkd-bench report                # tables and figures from the tracking store
  drkd-bench schema > drkd-bench.schema.json   # the config's JSON Schema, for your editor
"""


def _describe(parser: argparse.ArgumentParser) -> None:
    """The description names the registered methods (what the registry holds, never a list kept
    by hand); filled when help is shown, so a command that does not train loads no method."""
    import methods

    parser.description = (__doc__.split("\n")[0] + " A reproducibility benchmark for "
                          f"teacher-free knowledge distillation ({', '.join(methods.names())}).")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="drkd-bench", epilog=EPILOG,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.on_help(_describe)
    parser.add_argument("--version", action="version", version=f"drkd-bench {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for module in COMMANDS.values():
        command = importlib.import_module(f".commands.{module}", __package__)
        p = command.add(sub)
        p.set_defaults(run=command.run)
        # on every command: what it may register is known before the parser is built
        p.add_argument("--plugin", action="append", default=[], metavar="MODULE|FILE.py",
                       help="import this module or .py file first (repeatable): it may "
                            "register methods, teacher sources, batch plans, architectures and "
                            "datasets; a grid config's plugins: list does the same. Installed "
                            "packages' 'drkd_bench.plugins' entry points load by themselves")
    return parser


def _drop_stdout() -> None:
    """Point standard output at /dev/null so that the interpreter's final flush of text the
    stream could not take raises nothing more after the one line."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("drkd-bench")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def _load_plugins(argv: list[str]) -> None:
    """Installed packages' entry points, then every ``--plugin X`` of the command line, before
    the parser is built."""
    from benchmark.config import plugins

    plugins.load_entry_points()
    for i, arg in enumerate(argv):
        if arg == "--plugin" and i + 1 < len(argv):
            plugins.load(argv[i + 1])
        elif arg.startswith("--plugin="):
            plugins.load(arg.split("=", 1)[1])


def main(argv: list[str] | None = None) -> int:
    import methods  # the registry alone: the methods (and torch) load on its first use
    from benchmark.errors import ConfigError, DataError, ModelError, PluginError, TrackingError

    try:
        _load_plugins(sys.argv[1:] if argv is None else argv)
        parser = build_parser()  # after the plugins: --help lists what they registered
        args = parser.parse_args(argv)
        code = args.run(args)
        sys.stdout.flush()  # a failing output stream fails here, inside the one-line handler
        return code
    except (UsageError, ConfigError, DataError, ModelError, TrackingError, PluginError,
            methods.MethodError) as e:
        print(f"drkd-bench: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into head
        sys.stderr.close()
        return 0
    except OSError as e:  # what the command writes to cannot take it (> /dev/full, a full disk)
        _drop_stdout()
        print(f"drkd-bench: error: {e.strerror or e}"
              + (f": {e.filename}" if getattr(e, "filename", None) else ""), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("drkd-bench: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
