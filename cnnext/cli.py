# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The ``cnnext`` command.

Each subcommand lives in its own module, which provides ``add_arguments(parser)``
and ``run(args)`` (returning an exit status); the module is imported only when its
subcommand runs, so ``cnnext --help`` stays fast.
"""

import argparse
import importlib
import logging
import sys

__all__ = ["main"]

#: subcommand -> (module, one-line help)
SUBCOMMANDS = {
    "demo": ("cnnext.cli_commands.demo",
             "offline demo: mock sky -> map -> errors vs truth -> plots"),
    "query": ("cnnext.cli_commands.query", "print the extinction to (l, b[, d]) or its profile"),
    "map": ("cnnext.cli_commands.map", "build a map over a sky region (resumable)"),
    "fetch": ("cnnext.cli_commands.fetch", "download 2MASS for a region into a local catalogue"),
    "compare": ("cnnext.cli_commands.compare", "compare a cnnext map with other dustmaps maps"),
    "train": ("cnnext.training.cli", "train a model from synthetic data (needs cnnext[train])"),
    "info": ("cnnext.cli_commands.info", "show a model's metadata and execution providers"),
}


def _parser():
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="cnnext",
        description="3D dust extinction from 2MASS colour-magnitude diagrams with a CNN.")
    parser.add_argument("--version", action="version", version=f"cnnext {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    return parser, sub


def main(argv=None):
    """Run the ``cnnext`` command with ``argv`` (default: ``sys.argv[1:]``); return its status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, _ = _parser()
    # Parse only up to the subcommand here; the subcommand's own parser takes the rest.
    args, rest = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    module_name, help_ = SUBCOMMANDS[args.command]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        print(f"cnnext {args.command}: {exc}", file=sys.stderr)
        return 2
    sub = argparse.ArgumentParser(prog=f"cnnext {args.command}", description=help_)
    module.add_arguments(sub)
    sub_args = sub.parse_args(rest)
    sub_args.verbose = args.verbose
    try:
        return int(module.run(sub_args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, KeyError, OSError, RuntimeError) as exc:
        if args.verbose:
            raise
        print(f"cnnext {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
