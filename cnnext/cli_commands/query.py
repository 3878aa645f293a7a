# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``cnnext query``: print the extinction to (l, b, d) or the whole profile of (l, b)."""

import numpy as np

from ..quality import BANDS

__all__ = ["add_arguments", "run"]

_LABELS = {"V": "A_V", "J": "A_J", "H": "A_H", "Ks": "A_Ks", "E(B-V)": "E(B-V)"}


def add_arguments(parser):
    """Add the options of ``cnnext query`` to ``parser``."""
    parser.add_argument("l", type=float, help="Galactic longitude (deg)")
    parser.add_argument("b", type=float, help="Galactic latitude (deg)")
    parser.add_argument("d", type=float, nargs="?", default=None,
                        help="distance (kpc); without it the whole profile is printed")
    parser.add_argument("--map", dest="map_fname", default=None, metavar="FILE",
                        help="cnnext map file (offline); default: compute the sightline "
                             "from 2MASS (VizieR) with the model")
    parser.add_argument("--source", default=None,
                        help="for on-the-fly queries: vizier (default), irsa, a table file, "
                             "a `cnnext fetch` directory or a HATS catalogue")
    parser.add_argument("--model", default=None, metavar="PATH",
                        help="ONNX model for on-the-fly queries (default: the shipped model)")
    parser.add_argument("--band", default="V",
                        help="V (A_V, default), J, H, Ks or E(B-V)")
    parser.add_argument("--mode", default="mean", help="mean (default) or median")
    parser.add_argument("--no-cache", action="store_true",
                        help="do not keep computed sightlines in the on-disk cache")


def run(args):
    """Run ``cnnext query`` with the parsed ``args``; return the exit status."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from astropy.table import QTable

    from ..extinction import BAND_NAMES
    from ..map import CNNExtinctionMap

    band = BAND_NAMES.get(args.band)
    if band is None:
        raise ValueError(f"unknown --band {args.band!r}: use V, J, H, Ks or E(B-V)")
    if args.mode not in ("mean", "median"):
        raise ValueError(f"--mode must be 'mean' or 'median', got {args.mode!r}")
    if not -90.0 <= args.b <= 90.0:
        raise ValueError(f"b must be in [-90, 90] degrees, got {args.b}")
    if args.d is not None and not args.d >= 0:
        raise ValueError(f"d must be a non-negative distance in kpc, got {args.d}")
    if args.map_fname is not None:
        m = CNNExtinctionMap(map_fname=args.map_fname)
    else:
        from .map import photometry_source

        source = photometry_source(args.source) if args.source else None
        m = CNNExtinctionMap(model=args.model, source=source, cache=not args.no_cache)
    label = _LABELS[band]
    if args.d is not None:
        c = SkyCoord(args.l * u.deg, args.b * u.deg, distance=args.d * u.kpc,
                     frame="galactic")
        value, sigma, info = m.query(c, mode=args.mode, return_sigma=True, band=band,
                                     return_flags=True)
        if not np.isfinite(value):
            print(f"{label}(l={args.l:g}, b={args.b:g}, d={args.d:g} kpc): no data "
                  f"(outside the map, too few stars or outside the model's region)")
            return 1
        print(f"{label}(l={args.l:g}, b={args.b:g}, d={args.d:g} kpc) = {float(value):.3f} "
              f"± {float(sigma):.3f} mag")
        print(_cell_line(info))
        return 0
    c = SkyCoord(args.l * u.deg, args.b * u.deg, frame="galactic")
    value, sigma, info = m.query(c, mode=args.mode, return_sigma=True, band=band,
                                 return_flags=True)
    if not np.any(np.isfinite(value)):
        print(f"{label}(l={args.l:g}, b={args.b:g}): no data (outside the map, too few "
              f"stars or outside the model's region)")
        return 1
    table = QTable()
    table["distance"] = m.distances.to(u.kpc)
    table[label] = np.asarray(value, float) * u.mag
    table[f"{label}_sigma"] = np.asarray(sigma, float) * u.mag
    for col in (label, f"{label}_sigma"):
        table[col].info.format = ".3f"
    table["distance"].info.format = ".2f"
    print(f"# {label} profile at l={args.l:g}, b={args.b:g}")
    print(_cell_line(info))
    print("\n".join(table.pformat(max_lines=-1, max_width=-1)))
    return 0


def _cell_line(info):
    """One comment line on the sightline cell: its stars and observed depth."""
    depth = [float(info[f"m10_{b}"]) for b in BANDS]
    text = f"# sightline cell: {int(info['n_stars'])} stars"
    if np.all(np.isfinite(depth)):
        text += (f"; observed to S/N 10 at J {depth[0]:.2f}, H {depth[1]:.2f}, "
                 f"Ks {depth[2]:.2f} mag (estimated from its stars)")
    return text
