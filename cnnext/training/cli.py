# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``cnnext train``: train a model from synthetic data (preset or TOML configuration)."""

import json
import logging
import os
import sys
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser):
    """Add the ``cnnext train`` options to an `argparse.ArgumentParser`."""
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--preset", default=None,
                      help="built-in configuration: carina, carina-c, carina-d and carina-e "
                           "(the four networks of the shipped model: see --average-with), "
                           "carina-a and carina-b (networks of earlier ones), perseus "
                           "(the real-2MASS validation field of benchmarks/bench_real.py) "
                           "or tiny (about a minute on a CPU); default carina")
    what.add_argument("--config", default=None, metavar="FILE.toml",
                      help="training configuration file (see the training docs)")
    parser.add_argument("--out", "-o", default=None, metavar="MODEL.onnx",
                        help="output model file (default: <name>.onnx)")
    parser.add_argument("--workdir", default=None,
                        help="directory for dataset chunks, checkpoints and the evaluation "
                             "(default: cnnext-train-<name>); an interrupted run resumes "
                             "from it")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="torch device for the training (default auto)")
    parser.add_argument("--jobs", "-j", type=int, default=-1,
                        help="processes for the data generation (default -1: all cores)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads for the training (default: the "
                             "configuration's; 0 = torch's default)")
    parser.add_argument("--seed", type=int, default=None, help="override the seed")
    parser.add_argument("--epochs", type=int, default=None, help="override the epochs")
    parser.add_argument("--sightlines", default=None, metavar="L,B;L,B;...",
                        help="override the training sightlines (Galactic degrees)")
    parser.add_argument("--average-with", action="append", default=[], metavar="MODEL.onnx",
                        help="average the trained network with this model (repeatable): "
                             "the output is the ensemble, its sigma scaled to a 68%% "
                             "coverage of the run's validation examples, evaluated as one "
                             "model")
    parser.add_argument("--no-evaluate", action="store_true",
                        help="skip the evaluation on held-out sightlines")
    parser.add_argument("--no-progress", action="store_true",
                        help="hide progress bars (the per-epoch lines stay; --quiet hides "
                             "both)")
    parser.add_argument("--show-config", action="store_true",
                        help="print the configuration as JSON and exit")


def _parse_sightlines(text):
    pairs = []
    for item in text.split(";"):
        item = item.strip()
        if not item:
            continue
        try:
            l, b = (float(v) for v in item.split(","))
        except ValueError:
            raise ValueError(f"--sightlines: {item!r} is not 'l,b' in degrees") from None
        pairs.append([l, b])
    if not pairs:
        raise ValueError("--sightlines lists no sightline")
    return pairs


def _train_with_progress(train_model, *, quiet, bars, **kwargs):
    # A training runs for minutes to hours: unless --quiet, show the dataset chunks
    # (a bar) and one line per epoch (log records of cnnext.training at INFO),
    # written through tqdm so that they do not break the bars.
    if quiet:
        return train_model(progress_bar=False, **kwargs)
    from tqdm.contrib.logging import logging_redirect_tqdm

    logger = logging.getLogger("cnnext.training")
    level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        with logging_redirect_tqdm(loggers=[logging.getLogger("cnnext")]):
            return train_model(progress_bar=bars, **kwargs)
    finally:
        logger.setLevel(level)


def run(args):
    """Run ``cnnext train``; return the exit status."""
    from .presets import load_config, load_preset

    config = load_config(args.config) if args.config else load_preset(args.preset or "carina")
    changes = {}
    if args.seed is not None:
        changes["seed"] = args.seed
    training = {}
    if args.epochs is not None:
        training["epochs"] = args.epochs
    if args.threads is not None:
        training["threads"] = args.threads
    if training:
        changes["training"] = training
    if args.sightlines:
        changes["region"] = {"sightlines": _parse_sightlines(args.sightlines)}
    if changes:
        config = config.replace(**changes)
    if args.show_config:
        print(json.dumps(config.to_dict(), indent=2))
        return 0

    from .train import train_model

    out = Path(args.out or f"{config.name}.onnx")
    workdir = Path(args.workdir or f"cnnext-train-{config.name}")
    n_jobs = args.jobs if args.jobs > 0 else (os.cpu_count() or 1)
    quiet = getattr(args, "quiet", False)
    if not quiet:
        print(f"training {config.name!r}: {len(config.region.sightlines)} sightlines, "
              f"work directory {workdir}, {n_jobs} data processes", file=sys.stderr)
    result = _train_with_progress(train_model, quiet=quiet, bars=not args.no_progress,
                                  config=config, workdir=workdir, out=out,
                                  device=args.device, n_jobs=n_jobs,
                                  evaluate=not args.no_evaluate,
                                  average_with=args.average_with)
    t = result.timings
    print(f"wrote {result.path} ({result.path.stat().st_size / 1e6:.2f} MB)")
    print(f"best epoch {result.fit.best_epoch} of {len(result.fit.history)}; data "
          f"{t.get('dataset', 0):.0f} s, training {t.get('training', 0):.0f} s")
    for group in ("inside", "outside"):
        s = result.metrics.get(group)
        if s:
            errs = ", ".join(f"{d} kpc {100 * v:.0f}%" for d, v in s["median_rel_err"].items())
            print(f"{group:8s} median relative error: {errs}; 68% coverage "
                  f"{100 * s['coverage68']:.0f}%")
    return 0
