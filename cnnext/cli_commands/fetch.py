# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
``cnnext fetch``: download the 2MASS stars of a region into a local catalogue.

The catalogue directory (resumable, one file per tile) then serves offline map
builds: ``cnnext map REGION -o map.fits --source DIR``.
"""

from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser):
    """Add the options of ``cnnext fetch`` to ``parser``."""
    parser.add_argument("region", help="DS9 region string or file, e.g. "
                                       "'galactic; box(280, 0, 20, 4, 0)'")
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="catalogue directory to write (created)")
    parser.add_argument("--source", default="vizier",
                        help="vizier (default), irsa, a table file or a HATS catalogue")
    parser.add_argument("--order", type=int, default=7,
                        help="HEALPix order of the sightline cells (default 7, the "
                             "shipped model's)")
    parser.add_argument("--tile-order", type=int, default=None,
                        help="HEALPix order of the tiles (one request and one file each; "
                             "default order - 3)")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete an existing catalogue at DIR first")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args):
    """Run ``cnnext fetch`` with the parsed ``args``; return the exit status."""
    from ..fetch import fetch_region
    from .map import photometry_source

    region = Path(args.region) if Path(args.region).is_file() else args.region
    catalog = fetch_region(region, source=photometry_source(args.source), output=args.output,
                           order=args.order, tile_order=args.tile_order,
                           overwrite=args.overwrite, progress_bar=not args.no_progress)
    print(f"wrote {args.output}: {len(catalog.cells)} cells at HEALPix order {args.order}; "
          f"build a map offline with: cnnext map {args.region!r} -o MAP.fits "
          f"--source {args.output}")
    return 0
