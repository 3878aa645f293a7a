# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
``cnnext demo``: the offline main job — mock sky -> map -> errors vs truth -> figures.

See `cnnext.demo.run_demo`.
"""

__all__ = ["add_arguments", "run"]


def add_arguments(parser):
    """Add the options of ``cnnext demo`` to ``parser``."""
    parser.add_argument("--outdir", default="cnnext-demo", metavar="DIR",
                        help="output directory (default ./cnnext-demo)")
    parser.add_argument("--model", default=None, metavar="PATH",
                        help="ONNX model (default: the shipped model)")
    parser.add_argument("--quick", action="store_true",
                        help="map a small region (l = 284-288, |b| <= 1) instead of "
                             "l = 280-300, |b| <= 2")
    parser.add_argument("--region", default=None,
                        help="map this DS9 region instead (e.g. 'galactic; box(285, 0, 2, "
                             "2, 0)')")
    parser.add_argument("--seed", type=int, default=2022, help="seed of the mock sky")
    parser.add_argument("--providers", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args):
    """Run ``cnnext demo`` with the parsed ``args``; return the exit status."""
    from ..demo import format_report, run_demo

    result = run_demo(args.outdir, model=args.model, quick=args.quick, region=args.region,
                      seed=args.seed, progress_bar=not args.no_progress,
                      providers=args.providers)
    print(format_report(result))
    return 0
