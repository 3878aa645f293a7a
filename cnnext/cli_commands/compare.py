# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
``cnnext compare``: a cnnext map against other 3D dust maps, in one quantity.

Other maps are named ``marshall``, ``bayestar`` or ``edenhofer2023`` (read from
dustmaps' data directory, after ``dustmaps.<name>.fetch()``), or given as files
(``NAME=PATH`` or ``PATH``): the format is recognised from the content (Marshall or
Bayestar HDF5, Edenhofer 2023 FITS, cnnext map FITS).
"""

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np

__all__ = ["add_arguments", "run", "open_map"]

_DEFAULT_DISTANCES = (0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0)
_NAMED = {"marshall": "marshall2006", "marshall2006": "marshall2006",
          "bayestar": "bayestar2019", "bayestar2019": "bayestar2019",
          "edenhofer": "edenhofer2023", "edenhofer2023": "edenhofer2023"}


def add_arguments(parser):
    """Add the options of ``cnnext compare`` to ``parser``."""
    parser.add_argument("map", help="cnnext map file (FITS)")
    parser.add_argument("others", nargs="+", metavar="OTHER",
                        help="marshall, bayestar, edenhofer2023, or a map file "
                             "(NAME=PATH or PATH: Marshall/Bayestar HDF5, Edenhofer FITS, "
                             "cnnext FITS)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--lb", nargs=2, type=float, metavar=("L", "B"),
                       help="compare profiles along the sightline (l, b) in degrees")
    where.add_argument("--slice", nargs=2, type=float, metavar=("L1", "L2"),
                       help="compare a longitude-distance slice from L1 to L2 (deg) at --b")
    parser.add_argument("--b", type=float, default=0.0, help="latitude of --slice (deg)")
    parser.add_argument("--step", type=float, default=0.5,
                        help="longitude step of --slice (deg, default 0.5)")
    parser.add_argument("--quantity", default="A_V", help="A_V (default), A_Ks or E(B-V)")
    parser.add_argument("--distances", nargs="+", type=float, default=None, metavar="D",
                        help="distances (kpc) of the printed table "
                             f"(default {' '.join(map(str, _DEFAULT_DISTANCES))})")
    parser.add_argument("--png", default=None, metavar="FILE", help="also save a figure")


def _quiet(func, *args, **kwargs):
    """Call a dustmaps constructor without its progress prints and config warnings."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.filterwarnings("ignore", message="Configuration file not found")
        return func(*args, **kwargs)


def _kind_of_file(path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"map file {str(path)!r} does not exist")
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"\x89HDF"):
        import h5py

        with h5py.File(path, "r") as f:
            keys = set(f.keys())
        if "pixel_info" in keys:
            return "bayestar2019"
        if {"A", "dist", "l", "b"} <= keys:
            return "marshall2006"
        raise ValueError(f"{str(path)!r} is an HDF5 file but neither a Marshall nor a "
                         f"Bayestar map")
    if head.startswith(b"SIMPLE"):
        from astropy.io import fits

        with fits.open(path) as hdul:
            if any(h.header.get("CNNXFMT") for h in hdul[1:2]):
                return "cnnext"
        return "edenhofer2023"
    raise ValueError(f"cannot tell the format of {str(path)!r} (expected HDF5 or FITS)")


def open_map(spec):
    """
    Return ``(name, map)`` for a command-line map specification.

    ``spec`` is a known name (``marshall``, ``bayestar``, ``edenhofer2023``: dustmaps'
    default files), a path, or ``NAME=PATH``.
    """
    name, _, path = spec.partition("=") if "=" in spec else ("", "", spec)
    if path.lower() in _NAMED and not Path(path).exists():
        kind, path = _NAMED[path.lower()], None
    else:
        kind = _kind_of_file(path)
    name = name or (kind if path is None else Path(path).stem)
    try:
        return name, _open(kind, path)
    except OSError as exc:
        if path is not None:
            raise
        module = {"marshall2006": "marshall", "bayestar2019": "bayestar"}.get(kind, kind)
        raise OSError(f"cannot read the {kind} map from dustmaps' data directory ({exc}); "
                      f"download it once with: python -c \"import dustmaps.{module}; "
                      f"dustmaps.{module}.fetch()\", or give its file as NAME=PATH") from None


def _open(kind, path):
    if kind == "cnnext":
        from ..map import CNNExtinctionMap

        return CNNExtinctionMap(map_fname=path)
    if kind == "marshall2006":
        from dustmaps.marshall import MarshallQuery

        return _quiet(MarshallQuery, map_fname=path)
    if kind == "bayestar2019":
        from dustmaps.bayestar import BayestarQuery

        return _quiet(BayestarQuery, map_fname=path)
    from dustmaps.edenhofer2023 import Edenhofer2023Query

    return _quiet(Edenhofer2023Query, map_fname=path, integrated=True)


def _import_dustmaps():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Configuration file not found")
        import dustmaps.bayestar
        import dustmaps.edenhofer2023
        import dustmaps.marshall  # noqa: F401


def _print_table(table):
    print("\n".join(table.pformat(max_lines=-1, max_width=-1)))


def run(args):
    """Run ``cnnext compare`` with the parsed ``args``; return the exit status."""
    import astropy.units as u
    from astropy.table import QTable

    from .. import compare
    from ..map import CNNExtinctionMap

    _import_dustmaps()
    maps = {Path(args.map).stem or "cnnext": CNNExtinctionMap(map_fname=args.map)}
    for spec in args.others:
        name, m = open_map(spec)
        if name in maps:
            name = f"{name}_{len(maps)}"
        maps[name] = m
    names = list(maps)
    shown = np.asarray(args.distances or _DEFAULT_DISTANCES, float)
    if args.lb is not None:
        l, b = args.lb
        dense = np.union1d(compare.DEFAULT_DISTANCES, shown)
        table = compare.compare_profiles(maps, (l, b), distances=dense,
                                         quantity=args.quantity)
        keep = np.isin(np.round(table["distance"].to_value(u.kpc), 6), np.round(shown, 6))
        out = table[keep]
        for col in out.colnames[3:]:
            out[col].info.format = ".3f"
        out.remove_columns(["l", "b"])
        print(f"# {table.meta['quantity']} (mag) at l={l:g}, b={b:g}")
        _print_table(out)
        if args.png:
            ax = compare.plot_profiles(table)
            ax.figure.savefig(args.png, dpi=120)
    else:
        l1, l2 = sorted(args.slice)
        lons = np.arange(l1, l2 + 0.5 * args.step, args.step)
        table = compare.compare_slice(maps, lons, b=args.b, distances=shown,
                                      quantity=args.quantity, return_sigma=False)
        # one line per distance: the median over the slice's longitudes of each map
        summary = QTable()
        summary["distance"] = shown * u.kpc
        for name in names:
            vals = table[name].to_value(u.mag)
            finite = np.isfinite(vals)
            med = np.full(shown.size, np.nan)
            cols = finite.any(axis=0)
            if cols.any():
                med[cols] = np.nanmedian(vals[:, cols], axis=0)
            summary[f"{name}_median"] = med * u.mag
            summary[f"{name}_median"].info.format = ".3f"
            summary[f"{name}_n"] = finite.sum(axis=0)
        print(f"# {table.meta['quantity']} (mag), median over l = {l1:g}..{l2:g} deg at "
              f"b={args.b:g}")
        _print_table(summary)
        if args.png:
            dense = compare.compare_slice(maps, lons, b=args.b, quantity=args.quantity,
                                          return_sigma=False)
            fig = compare.plot_slices(dense)
            fig.savefig(args.png, dpi=120)
    print("# conversions:")
    for name, text in table.meta["conversions"].items():
        print(f"#   {name}: {text}")
    if args.png:
        print(f"# figure written to {args.png}")
    return 0
