# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Profiles at query distances, and the uncertainty model of the queries.

`CNNExtinctionMap.query <cnnext.map.CNNExtinctionMap.query>` finds the cell of each
coordinate (`cells_of`), brackets its distance between the map's nodes
(`DistanceNodes`), interpolates (`interpolate`) and, for the quantile and sampling
modes, draws profiles from the network's mean and 1-sigma uncertainty
(`draw_profiles`, `profile_values`).
"""

import numpy as np
from scipy.special import ndtri

__all__ = ["CHUNK", "cells_of", "DistanceNodes", "interpolate", "draw_profiles", "check_pct",
           "profile_values"]

#: Coordinates handled at once when each one needs its own profile (random_sample);
#: bounds memory to ~chunk x n_dist x 8 bytes.
CHUNK = 65536


def cells_of(lon, lat, order):
    """Return the nested Galactic HEALPix cells of (lon, lat) in degrees; -1 where not finite."""
    ok = np.isfinite(lon) & np.isfinite(lat)
    all_ok = bool(ok.all())
    if not all_ok:
        lon = np.where(ok, lon, 0.0)
        lat = np.where(ok, lat, 0.0)
    try:
        import healpy
    except ImportError:  # healpy comes with dustmaps, but astropy-healpix always works
        from .healpix import lonlat_to_cells

        cells = lonlat_to_cells(lon, lat, order)
    else:
        # healpy's C implementation is ~4x faster than astropy-healpix here, which
        # matters for the 10^6-coordinates-per-second goal
        theta = np.radians(90.0 - lat)
        phi = np.radians(lon)
        cells = healpy.ang2pix(1 << order, theta, phi, nest=True).astype(np.int64, copy=False)
    return cells if all_ok else np.where(ok, cells, -1)


class DistanceNodes:
    """
    Distance nodes and the bracketing of query distances between them.

    Rule: linear from zero below the first node, linear between nodes, constant
    beyond the last node. `locate` returns, for each distance, the upper node of its
    segment, the weight of that node and whether the lower end is the origin.
    """

    def __init__(self, nodes):
        self.nodes = np.asarray(nodes, dtype=float)
        steps = np.diff(np.r_[0.0, self.nodes])
        # evenly spaced from the origin (the usual 0.1, 0.2, ... kpc grid): the segment
        # is found by arithmetic instead of a binary search
        self.step = float(steps[0]) if np.allclose(steps, steps[0], rtol=1e-9,
                                                   atol=0.0) else None

    def locate(self, d):
        nodes = self.nodes
        nd = nodes.size
        if self.step is not None:
            # segment by arithmetic; a distance on a node may land in either
            # neighbouring segment through rounding, and both give the node's value
            x = d * (1.0 / self.step)
            with np.errstate(invalid="ignore"):
                k = np.minimum(x, nd - 1.0)
                np.floor(k, out=k)
                np.maximum(k, 0.0, out=k)
            hi = np.nan_to_num(k, nan=0.0).astype(np.intp)
            x -= hi
            w = x
        else:
            k = np.searchsorted(nodes, d, side="right")
            hi = np.minimum(k, nd - 1)
            lo = hi - 1
            x_lo = np.where(lo < 0, 0.0, nodes[np.maximum(lo, 0)])
            with np.errstate(invalid="ignore", divide="ignore"):
                w = (d - x_lo) / (nodes[hi] - x_lo)
        np.clip(w, 0.0, 1.0, out=w)
        return hi, w, hi == 0


def interpolate(table, rows, loc, *, infinite=False):
    """
    Profiles ``table[rows]`` at located distances ``loc`` (from `DistanceNodes.locate`).

    ``table`` is ``(n_rows, n_nodes)`` or ``(n_rows, n_nodes, k)``; ``rows`` is
    ``(n,)``; the result is ``(n,)`` or ``(n, k)``. ``infinite``: the table may hold
    infinities (0th/100th percentiles), interpolate them without NaN.
    """
    hi, w, below = loc
    v_hi = table[rows, hi].astype(float)
    v_lo = table[rows, np.maximum(hi - 1, 0)].astype(float)
    if table.ndim == 3:
        w = w[:, None]
        below = below[:, None]
    v_lo = np.where(below, 0.0, v_lo)
    if not infinite:
        v_hi -= v_lo
        v_hi *= w
        v_hi += v_lo
        return v_hi
    with np.errstate(invalid="ignore"):
        out = (1.0 - w) * v_lo + w * v_hi
    out = np.where(w == 0.0, v_lo, out)
    return np.where(w == 1.0, v_hi, out)


def draw_profiles(av, sigma, z):
    """
    Profiles ``av + z sigma`` clipped at zero and made non-decreasing in distance.

    ``av``, ``sigma``: ``(..., n_dist)``; ``z`` broadcasts against ``av[..., 0]``.
    """
    z = np.asarray(z, dtype=float)[..., None]
    with np.errstate(invalid="ignore"):
        # z = +-inf (0th/100th percentile) with sigma = 0 must give av, not NaN
        out = np.where(sigma > 0, av + z * sigma, av)
    out = np.maximum(out, 0.0)
    return np.maximum.accumulate(out, axis=-1)


def check_pct(pct, mode):
    """Check ``pct`` for ``mode``: return the percentiles (1D) and whether one was given."""
    if mode != "percentile":
        if pct is not None:
            raise ValueError(f"pct is only used with mode='percentile', got mode={mode!r}")
        return None, True
    if pct is None:
        raise ValueError("mode='percentile' needs pct (a number or a list of numbers in "
                         "[0, 100])")
    try:
        values = np.asarray(pct, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"pct must be a number or a list of numbers in [0, 100], "
                         f"got {pct!r}") from None
    if values.ndim > 1 or values.size == 0 or not np.all(np.isfinite(values)) or \
            np.any((values < 0) | (values > 100)):
        raise ValueError(f"pct must be a number or a 1D list of numbers in [0, 100], "
                         f"got {pct!r}")
    return values.reshape(-1), values.ndim == 0


def profile_values(pm, r, loc, mode, pcts, scalar_pct, n_samples, rng, n_dist):
    """
    The values of a query before masking and band conversion: the rows ``r`` of the
    `~cnnext.profiles.ProfileMap` ``pm`` at the located distances ``loc`` (from
    `DistanceNodes.locate`; `None`: whole profiles), in ``mode``. Shape ``(n,)`` or
    ``(n, n_dist)``, plus the sample or percentile axis.
    """
    nd = n_dist
    if len(pm) == 0:  # nothing known: every coordinate is NaN anyway
        extra = ()
        if mode == "samples":
            extra = (int(n_samples),)
        elif mode == "percentile" and not scalar_pct:
            extra = (pcts.size,)
        base = (r.size,) if loc is not None else (r.size, nd)
        return np.full(base + extra, np.nan)
    if mode == "mean":
        return interpolate(pm.av, r, loc) if loc is not None else pm.av[r].astype(float)
    if mode == "random_sample":
        # one draw per coordinate: each needs its own profile, done in chunks
        shape = (r.size,) if loc is not None else (r.size, nd)
        out = np.empty(shape)
        z = rng.standard_normal(r.size)
        for start in range(0, r.size, CHUNK):
            sl = slice(start, start + CHUNK)
            prof = draw_profiles(pm.av[r[sl]].astype(float), pm.sigma[r[sl]].astype(float), z[sl])
            out[sl] = prof if loc is None else interpolate(
                prof, np.arange(prof.shape[0]), tuple(x[sl] for x in loc))
        return out
    # the other modes transform each sightline once: work on the unique rows
    uniq, inv = np.unique(r, return_inverse=True)
    av = pm.av[uniq].astype(float)
    sigma = pm.sigma[uniq].astype(float)
    if mode == "median":
        table = draw_profiles(av, sigma, np.zeros(uniq.size))
    elif mode == "random_sample_per_pix":
        table = draw_profiles(av, sigma, rng.standard_normal(uniq.size))
    else:
        z = ndtri(pcts / 100.0) if mode == "percentile" else \
            rng.standard_normal((int(n_samples), uniq.size))
        if mode == "percentile":
            z = np.broadcast_to(z[:, None], (pcts.size, uniq.size))
        # (k, m, nd) -> (m, nd, k): the extra axis last, as in dustmaps
        table = np.moveaxis(draw_profiles(av, sigma, z), 0, -1)
        if mode == "percentile" and scalar_pct:
            table = table[..., 0]
    if loc is None:
        return table[inv]
    infinite = mode == "percentile" and bool(np.any((pcts == 0) | (pcts == 100)))
    return interpolate(table, inv, loc, infinite=infinite)
