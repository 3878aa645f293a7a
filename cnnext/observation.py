# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
How deep a sightline was observed, measured from its own stars.

2MASS is not equally deep everywhere: the nominal S/N-10 limits (J 15.8, H 15.1,
Ks 14.3) are about half a magnitude too shallow off the plane, and confusion makes
crowded plane fields shallower still. The depth changes which stars a CMD holds,
so the network must know it. It is measured here, per sightline, from the stars
themselves, with the same estimator for real photometry and for the mock
observations the network is trained on (`cnnext.synthetic.observe_many` calls
`estimate_observation` on every synthetic example):

- **S/N-10 magnitude** ``m10`` per band: the 2MASS error law
  ``sigma**2 = (0.10857 x)**2 + POISSON**2 x + FLOOR**2`` with
  ``x = 10**(0.4 (m - m10))`` is solved for ``m10`` at each star whose reported
  error lies in ``FIT_ERRORS`` (where the error is dominated by the sky and source
  noise, not by the floor), and the median of those values is the sightline's
  ``m10``: a robust one-parameter fit of the law to (magnitude, reported error).
- **Count turnover** ``peak`` per band: the mode of the histogram of detected
  magnitudes, smoothed with a Gaussian of ``PEAK_SMOOTH`` mag — where
  incompleteness overtakes the rising star counts (Marshall et al. 2006 took the
  same peak as the completeness limit of a field).

A band's statistics use every star with a finite magnitude and a finite reported
error in that band, before quality cuts (upper limits have no error and are left
out), so that the estimate does not depend on the cuts a model uses.
`estimate_cells` pools the parent HEALPix cell (one order up, then two) when a
cell has too few such stars.

The network reads the estimates as offsets from `REFERENCE` (`descriptor_array`).
"""

import numpy as np

from .quality import BANDS, as_float64

__all__ = ["DESCRIPTORS", "REFERENCE", "FIT_ERRORS", "POISSON", "FLOOR", "PEAK_SMOOTH",
           "MIN_STARS", "estimate_observation", "estimate_cells", "descriptor_array"]

#: Names of the observation descriptors, in the order of the arrays.
DESCRIPTORS = tuple(f"m10_{b}" for b in BANDS) + tuple(f"peak_{b}" for b in BANDS)
#: Nominal 2MASS values of the descriptors (mag): the S/N-10 limits of the
#: Explanatory Supplement and the count peaks of the same logistic completeness
#: with the mock's default parameters. Descriptors are given to the network as
#: offsets from these.
REFERENCE = {"m10_J": 15.8, "m10_H": 15.1, "m10_Ks": 14.3,
             "peak_J": 16.3, "peak_H": 15.6, "peak_Ks": 14.8}
#: Reported errors (mag) of the stars used to fit ``m10``.
FIT_ERRORS = (0.07, 0.25)
#: Source-photon term (mag at m10) and error floor (mag) of the fitted error law.
POISSON, FLOOR = 0.03, 0.03
#: Gaussian smoothing (mag) of the magnitude histogram whose mode is ``peak``.
PEAK_SMOOTH = 0.2
#: Fewest stars for a band's estimate: fewer in a cell and the parent cell is pooled.
MIN_STARS = 40

_PEAK_RANGE = (8.0, 19.0)
_PEAK_BIN = 0.05


def _group_median(values, groups, n_groups):
    """Median of ``values`` per group (NaN for an empty group), without a Python loop."""
    out = np.full(n_groups, np.nan)
    if not values.size:
        return out, np.zeros(n_groups, np.int64)
    order = np.lexsort((values, groups))
    v, g = values[order], groups[order]
    counts = np.bincount(g, minlength=n_groups)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    has = counts > 0
    lo = start + (counts - 1) // 2
    hi = start + counts // 2
    out[has] = 0.5 * (v[lo[has]] + v[hi[has]])
    return out, counts


def _m10_per_star(mag, err):
    """The ``m10`` that the error law gives for each (magnitude, error) pair."""
    a, b = 0.10857 ** 2, POISSON ** 2
    c = FLOOR ** 2 - err ** 2
    x = (-b + np.sqrt(b * b - 4.0 * a * c)) / (2.0 * a)
    return mag - 2.5 * np.log10(x)


def _count_peak(mag, groups, n_groups):
    """Mode of the smoothed magnitude histogram per group (NaN when empty)."""
    from scipy.ndimage import gaussian_filter1d

    lo, hi = _PEAK_RANGE
    n_bins = int(round((hi - lo) / _PEAK_BIN))
    k = np.floor((mag - lo) / _PEAK_BIN).astype(np.int64)
    ok = (k >= 0) & (k < n_bins)
    hist = np.bincount(groups[ok] * n_bins + k[ok], minlength=n_groups * n_bins)
    hist = gaussian_filter1d(hist.reshape(n_groups, n_bins).astype(float),
                             PEAK_SMOOTH / _PEAK_BIN, axis=1, mode="constant")
    peak = lo + (np.argmax(hist, axis=1) + 0.5) * _PEAK_BIN
    return np.where(hist.max(axis=1) > 0, peak, np.nan)


def estimate_observation(stars, groups, n_groups, *, min_stars=MIN_STARS):
    """
    Estimate the depth descriptors of groups of stars (sightlines, mock examples).

    Parameters
    ----------
    stars : `~astropy.table.Table` or mapping of arrays
        ``J``, ``H``, ``Ks`` and their reported errors ``e_J``, ``e_H``, ``e_Ks``
        (mag); a band counts for a star when both are finite.
    groups : array of int
        Group of each star in ``[0, n_groups)``; negative values are ignored.
    n_groups : int
        Number of groups.
    min_stars : int
        A band of a group with fewer usable stars gets NaN descriptors.

    Returns
    -------
    values : `numpy.ndarray`
        ``(n_groups, 6)`` in the order of `DESCRIPTORS` (mag): ``m10`` and count
        peak of J, H, Ks.
    n_used : `numpy.ndarray`
        ``(n_groups, 3)`` stars with a measured magnitude per band.

    Examples
    --------
    A mock observation at the nominal depth gives back about its own S/N-10
    magnitudes:

    >>> import numpy as np
    >>> from cnnext.observation import estimate_observation
    >>> from cnnext.synthetic import PhotometricModel
    >>> pm = PhotometricModel()
    >>> rng = np.random.default_rng(0)
    >>> stars = {}
    >>> for band in ("J", "H", "Ks"):
    ...     m = rng.uniform(9.0, 17.0, 4000)
    ...     stars[band] = m
    ...     stars["e_" + band] = np.sqrt(pm.sigma(band, m) ** 2 + pm.calibration ** 2)
    >>> values, n = estimate_observation(stars, np.zeros(4000, int), 1)
    >>> np.round(values[0, :3], 1).tolist()
    [15.8, 15.1, 14.3]
    """
    groups = np.asarray(groups, dtype=np.int64)
    n_groups = int(n_groups)
    values = np.full((n_groups, len(DESCRIPTORS)), np.nan)
    n_used = np.zeros((n_groups, len(BANDS)), np.int64)
    if n_groups == 0:
        return values, n_used
    for k, band in enumerate(BANDS):
        mag, err = as_float64(stars[band]), as_float64(stars[f"e_{band}"])
        with np.errstate(invalid="ignore"):
            usable = np.isfinite(mag) & np.isfinite(err) & (err > 0) & (groups >= 0)
            n_used[:, k] = np.bincount(groups[usable], minlength=n_groups)
            fit = usable & (err >= FIT_ERRORS[0]) & (err <= FIT_ERRORS[1])
        m10, n_fit = _group_median(_m10_per_star(mag[fit], err[fit]), groups[fit], n_groups)
        peak = _count_peak(mag[usable], groups[usable], n_groups)
        enough = n_used[:, k] >= min_stars
        values[:, k] = np.where(enough & (n_fit >= max(5, min_stars // 8)), m10, np.nan)
        values[:, len(BANDS) + k] = np.where(enough, peak, np.nan)
    return values, n_used


def estimate_cells(stars, cells, order, *, min_stars=MIN_STARS, max_pool=2):
    """
    Estimate the depth descriptors of HEALPix sightline cells, pooling sparse ones.

    Parameters
    ----------
    stars : `~astropy.table.Table` or mapping of arrays
        Star table (cnnext schema) with an int64 ``cell`` column: the nested
        Galactic cell of each star at ``order``.
    cells : array of int
        The cells to estimate (sorted, unique).
    order : int
        HEALPix order of ``cells``.
    min_stars : int
        A cell with fewer usable stars in a band than this takes that band's
        estimate from its parent cell (all the stars of ``stars`` inside the
        parent), then from the grandparent, up to ``max_pool`` orders up.
    max_pool : int
        How many orders up to pool at most.

    Returns
    -------
    values : `numpy.ndarray`
        ``(n_cells, 6)`` descriptors (mag, order of `DESCRIPTORS`); NaN where even
        the largest pool has too few stars.
    pooled : `numpy.ndarray`
        ``(n_cells,)`` number of orders up from which the estimate came (0: the
        cell itself), the largest over the bands.

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext.observation import estimate_cells
    >>> from cnnext.synthetic import PhotometricModel
    >>> pm, rng = PhotometricModel(), np.random.default_rng(1)
    >>> stars = {"cell": np.repeat([4, 5, 6, 7], [3000, 3000, 3000, 20])}
    >>> for band in ("J", "H", "Ks"):
    ...     stars[band] = rng.uniform(9.0, 17.0, 9020)
    ...     stars["e_" + band] = pm.sigma(band, stars[band])
    >>> values, pooled = estimate_cells(stars, [4, 7], 7)
    >>> pooled.tolist(), bool(abs(values[1, 2] - 14.3) < 0.1)
    ([0, 1], True)
    """
    cells = np.asarray(cells, dtype=np.int64)
    star_cells = np.asarray(stars["cell"], dtype=np.int64)
    values = np.full((cells.size, len(DESCRIPTORS)), np.nan)
    pooled = np.zeros(cells.size, np.int64)
    todo = np.ones((cells.size, len(BANDS)), bool)
    for up in range(int(max_pool) + 1):
        if not todo.any():
            break
        shift = 2 * up
        targets = np.unique(cells[todo.any(axis=1)] >> shift)
        pos = np.searchsorted(targets, star_cells >> shift)
        pos_c = np.clip(pos, 0, targets.size - 1)
        groups = np.where(targets[pos_c] == (star_cells >> shift), pos_c, -1)
        est, n_used = estimate_observation(stars, groups, targets.size, min_stars=min_stars)
        rows = np.searchsorted(targets, cells >> shift)
        rows_c = np.clip(rows, 0, targets.size - 1)
        found = targets[rows_c] == (cells >> shift)
        for k in range(len(BANDS)):
            take = todo[:, k] & found & (n_used[rows_c, k] >= min_stars)
            for col in (k, len(BANDS) + k):
                values[take, col] = est[rows_c[take], col]
            pooled[take] = np.maximum(pooled[take], up)
            todo[take, k] = False
    return values, pooled


def descriptor_array(values, names=DESCRIPTORS):
    """
    Return descriptors as a network reads them: offsets from `REFERENCE` (float32).

    NaN (no estimate) becomes 0, the nominal observation; offsets beyond ±3 mag
    (far outside any 2MASS field) are clipped there.

    Parameters
    ----------
    values : array
        ``(n, 6)`` descriptors in mag, in the order of `DESCRIPTORS` (as
        `estimate_observation` and `estimate_cells` return them).
    names : sequence of str
        The descriptors the network reads, in its order (a model's
        `~cnnext.model.CNNModel.descriptors`); default all.

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext.observation import descriptor_array
    >>> x = descriptor_array(np.array([[16.4, 15.4, 14.9, np.nan, 15.9, 15.4]]))
    >>> x.dtype.name, np.round(x.astype(float), 2).tolist()
    ('float32', [[0.6, 0.3, 0.6, 0.0, 0.3, 0.6]])
    """
    values = np.asarray(values, dtype=float).reshape(-1, len(DESCRIPTORS))
    unknown = sorted(set(names) - set(DESCRIPTORS))
    if unknown:
        raise ValueError(f"unknown observation descriptors {unknown}; this version of "
                         f"cnnext knows {list(DESCRIPTORS)}")
    pick = [DESCRIPTORS.index(n) for n in names]
    ref = np.array([REFERENCE[n] for n in names])
    out = np.nan_to_num(values[:, pick] - ref, nan=0.0)
    return np.clip(out, -3.0, 3.0).astype(np.float32)
