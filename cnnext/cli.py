# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The ``cnnext`` command.

Each subcommand lives in its own module, which provides ``add_arguments(parser)``
and ``run(args)`` (returning an exit status); the module is imported only when its
subcommand runs, so ``cnnext --help`` stays fast.
"""

import argparse
import contextlib
import importlib
import logging
import os
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


def _verbosity_options(parser, *, default):
    # on the main parser and again on each subcommand's, so that both
    # `cnnext -v train` and `cnnext train -v` work
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="store_true", default=default,
                       help="log progress details")
    group.add_argument("-q", "--quiet", action="store_true", default=default,
                       help="no progress messages or bars (warnings and errors still show)")


def _parser():
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="cnnext",
        description="3D dust extinction from 2MASS colour-magnitude diagrams with a CNN.")
    parser.add_argument("--version", action="version", version=f"cnnext {__version__}")
    _verbosity_options(parser, default=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    return parser, sub


@contextlib.contextmanager
def _logging(verbose):
    """
    Send cnnext's log records to stderr for the duration of a command.

    The handler sits on the ``cnnext`` logger, not the root logger: astropy already
    prints the warnings it logs (every `~cnnext.exceptions.CnnextWarning`) with its
    own handler, and a root handler would print each of them a second time.
    """
    logger = logging.getLogger("cnnext")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _stdout_closed():
    # The reader of our stdout went away (`cnnext info | head -2`): stop quietly.
    # Point stdout at /dev/null so that the interpreter's final flush cannot fail
    # again (see "Note on SIGPIPE" in the Python signal docs).
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout is not a real file
        pass
    return 141  # 128 + SIGPIPE, what the shell reports for a command killed by it


def main(argv=None):
    """Run the ``cnnext`` command with ``argv`` (default: ``sys.argv[1:]``); return its status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, _ = _parser()
    # Parse only up to the subcommand here; the subcommand's own parser takes the rest.
    args, rest = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    module_name, help_ = SUBCOMMANDS[args.command]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        print(f"cnnext {args.command}: {exc}", file=sys.stderr)
        return 2
    sub = argparse.ArgumentParser(prog=f"cnnext {args.command}", description=help_)
    _verbosity_options(sub, default=argparse.SUPPRESS)
    module.add_arguments(sub)
    sub_args = sub.parse_args(rest)
    sub_args.verbose = getattr(sub_args, "verbose", False) or args.verbose
    sub_args.quiet = getattr(sub_args, "quiet", False) or args.quiet
    if sub_args.verbose and sub_args.quiet:
        sub.error("--verbose and --quiet exclude each other")
    if sub_args.quiet and hasattr(sub_args, "no_progress"):
        sub_args.no_progress = True
    try:
        with _logging(sub_args.verbose):
            status = int(module.run(sub_args) or 0)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        return _stdout_closed()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, KeyError, OSError, RuntimeError) as exc:
        if sub_args.verbose:
            raise
        print(f"cnnext {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
