# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
``cnnext map``: build a map over a sky region (resumable) with `cnnext.build_map`.

``REGION`` is a DS9 region string (``"galactic; box(280, 0, 20, 4, 0)"``) or the
path of a DS9 region file. ``--source`` says where the 2MASS stars come from:
``vizier`` (default), ``irsa``, a table file (FITS, VOTable, CSV, ECSV, Parquet),
a catalogue directory written by ``cnnext fetch``, or a HATS catalogue (directory
or URL).
"""

import contextlib
import logging
from pathlib import Path

__all__ = ["add_arguments", "run", "photometry_source"]


def add_arguments(parser):
    """Add the options of ``cnnext map`` to ``parser``."""
    parser.add_argument("region", help="DS9 region string or file, e.g. "
                                       "'galactic; box(280, 0, 20, 4, 0)'")
    parser.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="map file to write (FITS)")
    parser.add_argument("--source", default="vizier",
                        help="vizier (default), irsa, a table file, a `cnnext fetch` "
                             "directory or a HATS catalogue (directory, URL or hats:PATH)")
    parser.add_argument("--model", default=None, metavar="PATH",
                        help="ONNX model (default: the shipped model)")
    parser.add_argument("--order", type=int, default=None,
                        help="HEALPix order of the cells (must be the model's; default: "
                             "the model's)")
    parser.add_argument("--tile-order", type=int, default=None,
                        help="HEALPix order of the tiles (one photometry request each; "
                             "default order - 3)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="run tiles on a local Dask cluster of N worker processes "
                             "(default 1: no Dask)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing map")
    parser.add_argument("--restart", action="store_true",
                        help="discard an existing checkpoint instead of resuming it")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--providers", default="auto", help="auto, cpu or cuda")


def _is_hats(path):
    return any((path / name).is_file() for name in ("hats.properties", "properties",
                                                    "catalog_info.json"))


def photometry_source(spec):
    """
    Return the photometry source named by a ``--source`` value.

    ``vizier`` and ``irsa`` give the 2MASS services; ``hats:PATH_OR_URL``, an
    ``http(s)://`` URL or a directory holding a HATS catalogue gives
    `~cnnext.photometry.hats.HatsSource`;
    another directory a `cnnext fetch` catalogue; a file a
    `~cnnext.photometry.TableSource`.
    """
    key = spec.strip()
    if key.lower() == "vizier":
        from ..photometry import VizierSource

        return VizierSource()
    if key.lower() == "irsa":
        from ..photometry import IrsaSource

        return IrsaSource()
    if key.lower().startswith("hats:"):
        from ..photometry.hats import HatsSource

        return HatsSource(key[5:])
    if key.startswith(("http://", "https://")):
        from ..photometry.hats import HatsSource

        return HatsSource(key)
    path = Path(key).expanduser()
    if path.is_dir():
        if _is_hats(path):
            from ..photometry.hats import HatsSource

            return HatsSource(path)
        from ..photometry.local import LocalCatalogSource

        return LocalCatalogSource(path)
    if path.is_file():
        from ..photometry import TableSource

        return TableSource(path)
    raise ValueError(f"--source {spec!r} is neither 'vizier', 'irsa', a URL nor an existing "
                     f"file or directory")


@contextlib.contextmanager
def _client(workers, verbose=False):
    if workers <= 1:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ImportError('--workers needs dask.distributed: pip install "cnnext[scale]"') \
            from None
    if not verbose:
        # distributed logs every start and stop at INFO level; keep the CLI's output clean
        logging.getLogger("distributed").setLevel(logging.WARNING)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def run(args):
    """Run ``cnnext map`` with the parsed ``args``; return the exit status."""
    from ..build import build_map
    from ..profiles import FLAG_FEW_STARS

    if args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    region = args.region
    if Path(region).is_file():
        region = Path(region)
    source = photometry_source(args.source)
    with _client(args.workers, getattr(args, "verbose", False)) as client:
        pm = build_map(region, source=source, model=args.model, order=args.order,
                       output=args.output, client=client, progress_bar=not args.no_progress,
                       tile_order=args.tile_order, overwrite=args.overwrite,
                       resume=not args.restart,
                       providers=args.providers)
    few = int(((pm.flags & FLAG_FEW_STARS) != 0).sum())
    print(f"wrote {args.output}: {len(pm)} cells at HEALPix order {pm.order}, "
          f"{pm.distances.size} distances {pm.distances[0]:g}-{pm.distances[-1]:g} kpc"
          + (f"; {few} cells with too few stars (NaN)" if few else ""))
    return 0
