# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Share information between neighbouring sightlines of a map: `smooth_neighbours`.

The network predicts each sightline (HEALPix cell) on its own, from its own stars
only. Neighbouring cells see much of the same dust, so a map can be post-processed
by mixing each cell's extinction density dA_V/dd with that of the cells around it
(issue 14: the density is smeared along the sightlines, "fingers of God"). This is
an opt-in post-processing step, never applied by the pipeline: measured on the
demo's mock sky (``benchmarks/bench_structure.py --neighbours``), it raises the
density correlation with the truth a little and lowers the fingers-of-God index, but the
index falls because the density is widened *across* the sightlines (it already
is wider than the truth's there), not because it is shortened along them. See
`smooth_neighbours`.
"""

import numpy as np
from astropy_healpix import HEALPix, level_to_nside

from .profiles import FLAG_FEW_STARS, FLAG_PARTIAL, ProfileMap

__all__ = ["smooth_neighbours", "neighbour_rows"]

#: Flags of cells without a usable profile (they are left alone and lend nothing).
_BAD_FLAGS = FLAG_FEW_STARS | FLAG_PARTIAL


def neighbour_rows(pm, usable=None):
    """
    Rows of the (up to 8) HEALPix neighbours of each cell of a map.

    Parameters
    ----------
    pm : `~cnnext.profiles.ProfileMap`
        The map (nested cells at ``pm.order``).
    usable : array of bool, optional
        Rows that may serve as neighbours; default all.

    Returns
    -------
    `numpy.ndarray`, shape (n_cells, 8)
        Row of each neighbour in ``pm``; -1 where the neighbour does not exist (a
        corner of a base cell), is not in the map or is not usable.

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext.neighbours import neighbour_rows
    >>> from cnnext.profiles import ProfileMap
    >>> pm = ProfileMap(cells=[121427, 121430, 121431], order=7, distances=[1.0],
    ...                 av=np.ones((3, 1)), sigma=np.zeros((3, 1)), n_stars=[50, 50, 50])
    >>> rows = neighbour_rows(pm)
    >>> [sorted(r[r >= 0].tolist()) for r in rows]  # 121427 and 121431 do not touch
    [[1], [0, 2], [1]]
    """
    n = len(pm)
    if n == 0:
        return np.zeros((0, 8), np.int64)
    hp = HEALPix(nside=level_to_nside(pm.order), order="nested")
    cells = np.asarray(hp.neighbours(pm.cells), dtype=np.int64).T  # (n, 8), -1: none
    rows = pm.lookup(cells)
    if usable is not None:
        usable = np.asarray(usable, bool)
        rows = np.where(rows >= 0, np.where(usable[np.maximum(rows, 0)], rows, -1), -1)
    return rows


def _check_weight(weight):
    try:
        w = float(weight)
    except (TypeError, ValueError):
        raise ValueError(f"weight must be a number in [0, 1], got {weight!r}") from None
    if isinstance(weight, bool) or not 0.0 <= w <= 1.0:
        raise ValueError(f"weight must be a number in [0, 1], got {weight!r}")
    return w


def _step(inc, sigma, rows, w):
    """One smoothing pass over the increments ``inc`` and the uncertainties ``sigma``."""
    n, nd = inc.shape
    valid = rows >= 0
    count = valid.sum(axis=1)
    sum_inc = np.zeros((n, nd))
    sum_sig = np.zeros((n, nd))
    for k in range(rows.shape[1]):  # one neighbour slot at a time: memory O(n * nd)
        ok = valid[:, k]
        j = rows[ok, k]
        sum_inc[ok] += inc[j]
        sum_sig[ok] += sigma[j]
    has = (count > 0)[:, None]
    c = np.maximum(count, 1)[:, None]
    return (np.where(has, (1.0 - w) * inc + w * sum_inc / c, inc),
            np.where(has, (1.0 - w) * sigma + w * sum_sig / c, sigma))


def smooth_neighbours(pm, weight, *, iterations=1):
    """
    Mix each cell's extinction density with that of its HEALPix neighbours.

    The density increments of a cell, ``inc = diff(A_V)`` with A_V = 0 before the
    first node, become

        ``(1 - weight) * inc_i + weight * mean over neighbours j of inc_j``

    and are summed again into a cumulative profile. The neighbours are the (up
    to 8) adjacent cells at the map's order (`neighbour_rows`) that are in the
    map, have a finite profile and are not flagged `~cnnext.profiles.FLAG_FEW_STARS`
    or `~cnnext.profiles.FLAG_PARTIAL`; such cells are also left untouched, as is
    a cell without any usable neighbour. Non-negative increments stay
    non-negative, so a monotonic profile stays monotonic.

    The uncertainty is mixed as the profiles: ``sigma' = (1 - weight) * sigma_i +
    weight * mean_j sigma_j``, the
    combination of fully correlated errors. Neighbouring cells are read by the
    same network from similar stars, so their errors are far from independent
    and no ``1 / sqrt(n)`` gain is claimed; nor is the error the mixing itself
    makes (neighbours see different dust) added.

    With ``iterations > 1`` the pass is repeated on its own output (the share of
    farther cells grows).

    Parameters
    ----------
    pm : `~cnnext.profiles.ProfileMap`
        The map; not modified.
    weight : float
        Share of the neighbours, in [0, 1]; 0 returns the profiles unchanged.
    iterations : int
        Number of passes (>= 1).

    Returns
    -------
    `~cnnext.profiles.ProfileMap`
        A new map with the same cells, flags and distances, and
        ``meta["neighbour_smoothing"]`` recording the parameters.

    Raises
    ------
    ValueError
        If ``weight`` is not in [0, 1] or ``iterations`` not a positive integer.

    Notes
    -----
    This is a smoothing across the sightlines, measured on the demo's mock sky
    with ``benchmarks/bench_structure.py --neighbours``. It averages down each
    cell's own noise (the density correlation with the truth and the cumulative
    errors improve a little) and it lowers the fingers-of-God index
    (`cnnext.metrics.fog_index`), but only by widening the density across the
    sightlines, where it is already wider than the truth's; the radial extent,
    the fingers themselves, grows slightly, and the share of ring-like error
    (`cnnext.metrics.ring_share`) too. Applied to the true profiles it blurs
    real clouds (density correlation of the smoothed truth with the truth about
    0.97 at ``weight=0.5``). Two variants meant to blur less did no better and
    are not offered: weighting each neighbour by its agreement with the cell
    within the uncertainties (a bilateral filter), and sharing only the
    distance placement of the dust (each cell's shape dA_V/dd / A_V mixed,
    its own total kept).

    Examples
    --------
    A cloud of 1 mag at 0.2 kpc in cell 121430 and none in its two neighbours in
    the map (which do not touch each other): with ``weight=0.5`` the cloud keeps
    half its column and each neighbour gets half of it.

    >>> import numpy as np
    >>> from cnnext.neighbours import smooth_neighbours
    >>> from cnnext.profiles import ProfileMap
    >>> av = np.zeros((3, 3))
    >>> av[1, 1:] = 1.0  # rows are sorted by cell: 121427, 121430, 121431
    >>> pm = ProfileMap(cells=[121427, 121430, 121431], order=7,
    ...                 distances=[0.1, 0.2, 0.3], av=av, sigma=np.full((3, 3), 0.1),
    ...                 n_stars=[50] * 3)
    >>> out = smooth_neighbours(pm, 0.5)
    >>> out.av.round(3).tolist()
    [[0.0, 0.5, 0.5], [0.0, 0.5, 0.5], [0.0, 0.5, 0.5]]
    >>> out.meta["neighbour_smoothing"]
    {'weight': 0.5, 'iterations': 1}
    """
    w = _check_weight(weight)
    if isinstance(iterations, bool) or int(iterations) != iterations or iterations < 1:
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
    av = np.asarray(pm.av, float)
    sigma = np.asarray(pm.sigma, float)
    usable = (np.isfinite(av).all(axis=1) & np.isfinite(sigma).all(axis=1)
              & ((pm.flags & _BAD_FLAGS) == 0))
    if w > 0 and usable.any() and pm.distances.size:
        rows = neighbour_rows(pm, usable)[usable]
        # rows index the usable cells only, renumbered
        renum = np.full(len(pm), -1, np.int64)
        renum[usable] = np.arange(int(usable.sum()))
        rows = np.where(rows >= 0, renum[np.maximum(rows, 0)], -1)
        inc, s = np.diff(av[usable], axis=1, prepend=0.0), sigma[usable]
        for _ in range(int(iterations)):
            inc, s = _step(inc, s, rows, w)
        av = av.copy()
        sigma = sigma.copy()
        av[usable], sigma[usable] = np.cumsum(inc, axis=1), s
    meta = dict(pm.meta)
    meta["neighbour_smoothing"] = {"weight": w, "iterations": int(iterations)}
    return ProfileMap(cells=pm.cells, order=pm.order, distances=pm.distances, av=av,
                      sigma=sigma, n_stars=pm.n_stars, flags=pm.flags, dmin=pm.dmin,
                      dmax=pm.dmax, meta=meta, observation=pm.observation)
