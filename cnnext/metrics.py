# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Scores of predicted extinction against the truth: cumulative errors and 3D structure.

The one place where cnnext defines how a map is scored; the demo, the training
evaluation (and so the numbers in a model's metadata), the comparisons and the
benchmarks all call these functions.

- **Cumulative profiles**: `relative_error` and `error_metrics` (bias, RMS, median
  relative error, 1-sigma coverage of the cumulative A_V at `REPORT_DISTANCES`).
- **Structure** (where the dust is, not only how much lies in front of a distance):
  `density` (dA_V/dd smoothed over a few distance bins), `density_correlation`,
  `ring_share` (error common to all sightlines at the same distance: concentric
  rings in a face-on view), `mean_density_ratio`, `fog_index` (radial over
  tangential extent of density features: fingers of God above 1, rings below),
  and `structure_metrics`, which gathers them at `STRUCTURE_SCALES`.

All functions take plain arrays: extinction in mag, distances in kpc, Galactic
coordinates in degrees.
"""

import astropy.units as u
import numpy as np
from astropy.table import QTable

__all__ = ["REL_ERR_FLOOR", "REPORT_DISTANCES", "STRUCTURE_SCALES", "STRUCTURE_DMAX",
           "relative_error", "error_metrics", "density", "density_correlation",
           "ring_share", "mean_density_ratio", "fog_index", "FoGIndex",
           "structure_metrics", "structure_summary", "blur_along_sightlines"]

#: Smallest true extinction (mag) in the denominator of relative errors
#: (`error_metrics`): sightlines with almost no dust would otherwise dominate the
#: statistic with errors of a few hundredths of a magnitude.
REL_ERR_FLOOR = 0.1

#: Distances (kpc) at which cnnext reports the errors of cumulative profiles.
REPORT_DISTANCES = (1.0, 2.0, 4.0, 6.0, 8.0)

#: Smoothing scales (kpc) at which cnnext reports the structure metrics: the
#: paper's 100 pc resolution, 300 and 500 pc.
STRUCTURE_SCALES = (0.1, 0.3, 0.5)

#: Largest distance (kpc) of the structure metrics: beyond it the red-clump giants
#: that carry the information are too faint in 2MASS.
STRUCTURE_DMAX = 8.0


def _interp_profiles(values, distances, at):
    """Linear interpolation of ``(n, n_dist)`` profiles at distances ``at``, vectorised."""
    values = np.asarray(values, float)
    if distances.size == 1:  # nothing to interpolate: ``at`` is that node
        return np.repeat(values, at.size, axis=1)
    idx = np.clip(np.searchsorted(distances, at), 1, distances.size - 1)
    d0, d1 = distances[idx - 1], distances[idx]
    w = np.clip((at - d0) / (d1 - d0), 0.0, 1.0)
    return values[:, idx - 1] * (1 - w) + values[:, idx] * w


def relative_error(pred, truth, *, floor=REL_ERR_FLOOR, signed=False):
    """
    Relative errors of predicted extinctions: ``abs(pred - truth) / max(truth, floor)``.

    The definition behind every relative error cnnext reports (`error_metrics`).

    Parameters
    ----------
    pred, truth : array-like
        Predicted and true extinction (mag), broadcastable.
    floor : float
        Smallest denominator (mag): a sightline with almost no dust counts with
        an error relative to ``floor`` instead of dominating the statistic.
    signed : bool
        Keep the sign of ``pred - truth`` (positive: read too high); the median
        of signed errors is a bias.

    Examples
    --------
    >>> from cnnext.metrics import relative_error
    >>> relative_error([1.1, 0.05], [1.0, 0.0]).round(3).tolist()
    [0.1, 0.5]
    >>> relative_error([0.9, 1.2], [1.0, 1.0], signed=True).round(3).tolist()
    [-0.1, 0.2]
    """
    pred = np.asarray(pred, float)
    truth = np.asarray(truth, float)
    diff = pred - truth
    return (diff if signed else np.abs(diff)) / np.maximum(truth, floor)


def error_metrics(av, sigma, truth, distances, *, at=REPORT_DISTANCES,
                  floor=REL_ERR_FLOOR):
    """
    Error statistics of predicted cumulative extinction profiles against the truth.

    This is cnnext's one scoring function of cumulative profiles
    (`structure_metrics` scores the density): the demo, the comparisons and the
    training evaluation (`cnnext.training.evaluate.profile_metrics`, the numbers in
    a model's metadata and model card) all use it.

    Parameters
    ----------
    av, sigma : array, shape (n_sightlines, n_dist)
        Predicted cumulative extinction and its 1-sigma uncertainty (mag). A
        non-finite prediction leaves that sightline out at that distance.
    truth : array, shape (n_sightlines, n_dist)
        True cumulative extinction at the same distances (mag).
    distances : array
        Distance nodes (kpc), increasing.
    at : sequence of float or None
        Distances (kpc) where the statistics are computed (linear interpolation
        between nodes, exact at a node); they must lie within the nodes. `None`
        means every node. Default `REPORT_DISTANCES`.
    floor : float
        Relative errors are ``abs(prediction - truth) / max(truth, floor)``: a
        sightline with almost no dust up to that distance counts with an error
        relative to ``floor`` mag instead of dominating the statistic.

    Returns
    -------
    `~astropy.table.QTable`
        One row per distance: ``distance``, ``n`` (sightlines with a finite
        prediction), ``truth_median``, ``bias`` (mean of prediction - truth),
        ``rms``, ``median_rel_err`` (median relative error, see ``floor``) and
        ``coverage68`` (fraction with ``abs(prediction - truth) <= sigma``; 0.68
        for well-calibrated Gaussian errors). ``meta["rel_err_floor"]`` holds
        ``floor``.

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext.metrics import error_metrics
    >>> d = np.array([1.0, 2.0, 3.0])
    >>> truth = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]])
    >>> t = error_metrics(truth + 0.5, np.full((2, 3), 0.6), truth, d, at=(1, 3))
    >>> t["bias"].value.tolist(), t["median_rel_err"].tolist(), t["coverage68"].tolist()
    ([0.5, 0.5], [0.375, 0.125], [1.0, 1.0])
    """
    distances = np.asarray(distances, float)
    av = np.asarray(av, float)
    sigma = np.asarray(sigma, float)
    truth = np.asarray(truth, float)
    shape = (len(truth), distances.size)
    if av.shape != shape or sigma.shape != shape or truth.ndim != 2:
        raise ValueError(f"av, sigma and truth must all be (n, {distances.size}) like "
                         f"distances; got {av.shape}, {sigma.shape}, {truth.shape}")
    at = distances.copy() if at is None else np.atleast_1d(np.asarray(at, float))
    tol = 1e-9 * max(1.0, float(np.abs(distances).max(initial=0.0)))
    if distances.size and ((at < distances[0] - tol) | (at > distances[-1] + tol)).any():
        raise ValueError(f"at: distances {at.tolist()} kpc must lie within the profile's "
                         f"nodes, {distances[0]:g}-{distances[-1]:g} kpc")
    pred = _interp_profiles(av, distances, at)
    sig = _interp_profiles(sigma, distances, at)
    true = _interp_profiles(truth, distances, at)
    err = pred - true
    ok = np.isfinite(err)
    n = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        err0 = np.where(ok, err, 0.0)
        bias = np.where(n > 0, err0.sum(axis=0) / np.maximum(n, 1), np.nan)
        rms = np.where(n > 0, np.sqrt((err0**2).sum(axis=0) / np.maximum(n, 1)), np.nan)
        rel = np.where(ok, relative_error(pred, true, floor=floor), np.nan)
        covered = np.where(ok, np.abs(err) <= sig, False)
        coverage = np.where(n > 0, covered.sum(axis=0) / np.maximum(n, 1), np.nan)
    has = n > 0
    median_rel = np.full(at.size, np.nan)
    true_med = np.full(at.size, np.nan)
    if has.any():
        median_rel[has] = np.nanmedian(rel[:, has], axis=0)
        true_med[has] = np.nanmedian(np.where(ok, true, np.nan)[:, has], axis=0)
    table = QTable()
    table["distance"] = at * u.kpc
    table["n"] = n.astype(int)
    table["truth_median"] = true_med * u.mag
    table["bias"] = bias * u.mag
    table["rms"] = rms * u.mag
    table["median_rel_err"] = median_rel
    table["coverage68"] = coverage
    table.meta["rel_err_floor"] = float(floor)
    return table


def _smoothing_bins(distances, scale):
    """Number of distance bins (odd, >= 1) of a boxcar ``scale`` kpc wide."""
    step = float(np.median(np.diff(distances))) if distances.size > 1 else \
        float(distances[0])
    k = int(round(float(scale) / step))
    if k < 1 or k % 2 == 0:
        raise ValueError(f"scale {scale!r} kpc is {float(scale) / step:g} distance bins of "
                         f"{step:g} kpc: it must be an odd number of bins (1, 3, 5, ...) so "
                         f"that the boxcar is centred on a bin")
    return k


def _as_profiles(values, distances, name):
    values = np.asarray(values, float)
    if values.ndim != 2 or values.shape[1] != distances.size:
        raise ValueError(f"{name} must be (n_sightlines, {distances.size}) like distances, "
                         f"got {values.shape}")
    return values


def density(av, distances, *, scale=0.1, d_max=STRUCTURE_DMAX):
    """
    Extinction density dA_V/dd of cumulative profiles, boxcar-smoothed.

    The density of bin ``i``, between nodes ``d[i-1]`` and ``d[i]`` (``d[-1] = 0``
    and A_V = 0 there), is ``(A_V[i] - A_V[i-1]) / (d[i] - d[i-1])``. It is then
    averaged over ``k = scale / step`` bins centred on bin ``i``, counting the
    density as zero outside the nodes (a centred boxcar with zero padding), and
    kept at the nodes ``d[i] <= d_max``.

    Parameters
    ----------
    av : array, shape (n_sightlines, n_dist)
        Cumulative A_V (mag) at ``distances``.
    distances : array, shape (n_dist,)
        Distance nodes (kpc), increasing.
    scale : float
        Width of the boxcar (kpc): an odd number of distance bins (0.1, 0.3,
        0.5 kpc for 100 pc nodes). One bin means no smoothing.
    d_max : float
        Largest distance (kpc) kept.

    Returns
    -------
    rho : `numpy.ndarray`, shape (n_sightlines, m)
        Smoothed density (mag/kpc) at the kept nodes.
    d : `numpy.ndarray`, shape (m,)
        The kept nodes (kpc): the far edges of the density bins.

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext.metrics import density
    >>> d = np.array([0.1, 0.2, 0.3, 0.4])
    >>> rho, dk = density([[0.0, 0.3, 0.3, 0.3]], d, d_max=0.3)
    >>> rho.round(6).tolist(), dk.tolist()
    ([[0.0, 3.0, 0.0]], [0.1, 0.2, 0.3])
    >>> density([[0.0, 0.3, 0.3, 0.3]], d, scale=0.3, d_max=0.3)[0].round(6).tolist()
    [[1.0, 1.0, 1.0]]
    """
    distances = np.asarray(distances, float)
    av = _as_profiles(av, distances, "av")
    k = _smoothing_bins(distances, scale)
    edges = np.concatenate([[0.0], distances])
    rho = np.diff(np.concatenate([np.zeros((len(av), 1)), av], axis=1), axis=1) / \
        np.diff(edges)
    if k > 1:
        h = k // 2
        c = np.zeros((len(av), distances.size + 2 * h + 1))
        np.cumsum(np.pad(rho, ((0, 0), (h, h))), axis=1, out=c[:, 1:])
        rho = (c[:, k:] - c[:, :-k]) / k
    keep = distances <= d_max + 1e-9 * max(1.0, abs(d_max))
    return rho[:, keep], distances[keep]


def _densities(pred, truth, distances, scale, d_max):
    """Smoothed densities of the sightlines where both are finite, ``(p, t, d)``."""
    distances = np.asarray(distances, float)
    pred = _as_profiles(pred, distances, "pred")
    truth = _as_profiles(truth, distances, "truth")
    p, d = density(pred, distances, scale=scale, d_max=d_max)
    t, _ = density(truth, distances, scale=scale, d_max=d_max)
    ok = np.isfinite(p).all(axis=1) & np.isfinite(t).all(axis=1)
    return p[ok], t[ok], d, ok


def density_correlation(pred, truth, distances, *, scale=0.1, d_max=STRUCTURE_DMAX,
                        d_min=0.0):
    """
    Pearson correlation of predicted and true extinction density.

    ``r`` of the pairs (predicted, true) `density` over all sightlines and all
    nodes up to ``d_max``: 1 when the prediction puts the dust where it is (up to
    a scale factor), 0 when its structure is unrelated to the truth. Sightlines
    with a non-finite value in either profile are left out.

    Parameters
    ----------
    pred, truth : array, shape (n_sightlines, n_dist)
        Predicted and true cumulative A_V (mag).
    distances : array
        Distance nodes (kpc).
    scale, d_max : float
        Smoothing and largest distance (kpc), as in `density`.
    d_min : float
        Only the nodes beyond this distance (kpc) count: with ``d_max``, the
        correlation within one range of distances (the densities are smoothed
        over the whole sightline first).

    Returns
    -------
    float
        NaN when fewer than two values are left or one side is constant.

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext.metrics import density_correlation
    >>> d = np.arange(1, 11) * 0.1
    >>> truth = np.cumsum(np.random.default_rng(1).exponential(size=(5, 10)), axis=1)
    >>> density_correlation(2 * truth, truth, d)  # doctest: +FLOAT_CMP
    1.0
    >>> density_correlation(2 * truth, truth, d, d_min=0.5)  # doctest: +FLOAT_CMP
    1.0
    """
    p, t, d, _ = _densities(pred, truth, distances, scale, d_max)
    if d_min > 0:
        p, t = p[:, d > d_min], t[:, d > d_min]
    if p.size < 2:
        return float("nan")
    p, t = p.ravel() - p.mean(), t.ravel() - t.mean()
    den = np.sqrt((p * p).sum() * (t * t).sum())
    return float((p * t).sum() / den) if den > 0 else float("nan")


def ring_share(pred, truth, distances, *, scale=0.1, d_max=STRUCTURE_DMAX):
    """
    Share of the density error that is common to all sightlines at one distance.

    With ``e = density(pred) - density(truth)`` (sightlines x nodes), the share is
    ``var_d(mean_s e) / var(e)``: the variance over distance of the error averaged
    across sightlines, over the variance of all errors (both about their mean).
    An error that repeats at the same distance on every sightline draws concentric
    rings in a face-on view and gives a share near 1; independent errors give
    about ``1 / n_sightlines``.

    Parameters
    ----------
    pred, truth : array, shape (n_sightlines, n_dist)
        Predicted and true cumulative A_V (mag).
    distances : array
        Distance nodes (kpc).
    scale, d_max : float
        Smoothing and largest distance (kpc), as in `density`.

    Returns
    -------
    float
        Between 0 and 1; NaN without errors to share.

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext.metrics import ring_share
    >>> d = np.arange(1, 11) * 0.1
    >>> truth = np.tile(np.arange(1, 11) * 0.1, (4, 1))
    >>> ring = truth + np.where(d > 0.5, 0.3, 0.0)  # one ring at 0.6 kpc
    >>> ring_share(ring, truth, d)  # doctest: +FLOAT_CMP
    1.0
    """
    p, t, _, _ = _densities(pred, truth, distances, scale, d_max)
    e = p - t
    total = e.var() if e.size else 0.0
    return float(e.mean(axis=0).var() / total) if total > 0 else float("nan")


def mean_density_ratio(pred, truth, distances, *, scale=0.1, d_max=STRUCTURE_DMAX):
    """
    How much more the mean predicted density varies with distance than the truth's.

    ``var_d(mean_s density(pred)) / var_d(mean_s density(truth))``: the variance
    over distance of the across-sightline mean density, predicted over true. A map
    with rings has bumps in its mean density that the truth does not have (ratio
    above 1); a map that smears the dust evenly has a ratio below 1.

    Parameters
    ----------
    pred, truth : array, shape (n_sightlines, n_dist)
        Predicted and true cumulative A_V (mag).
    distances : array
        Distance nodes (kpc).
    scale, d_max : float
        Smoothing and largest distance (kpc), as in `density`.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext.metrics import mean_density_ratio
    >>> d = np.arange(1, 11) * 0.1
    >>> truth = np.cumsum(np.tile([1.0, 2.0] * 5, (3, 1)), axis=1) * 0.1
    >>> mean_density_ratio(2 * truth, truth, d)  # doctest: +FLOAT_CMP
    4.0
    """
    p, t, _, _ = _densities(pred, truth, distances, scale, d_max)
    vt = t.mean(axis=0).var() if t.size else 0.0
    return float(p.mean(axis=0).var() / vt) if vt > 0 else float("nan")


class FoGIndex(float):
    """
    A fingers-of-God index (a float) with the widths it was computed from.

    Attributes
    ----------
    radial_pred, tangential_pred, radial_truth, tangential_truth : float
        Correlation lengths (kpc) of the density fluctuations along and across
        the sightlines, of the prediction and of the truth.
    """

    def __new__(cls, value, **widths):
        obj = super().__new__(cls, value)
        obj.__dict__.update(widths)
        return obj

    def __repr__(self):
        return f"FoGIndex({float(self)!r})"


def _correlation_length(lags, acf):
    """Integral (kpc) of a normalised autocorrelation from lag 0 to its first zero."""
    neg = np.flatnonzero(acf <= 0)
    if neg.size:
        j = int(neg[0])
        # up to the zero crossing between lags j-1 and j (linear)
        x0, x1, y0, y1 = lags[j - 1], lags[j], acf[j - 1], acf[j]
        lags = np.concatenate([lags[:j], [x0 + (x1 - x0) * y0 / (y0 - y1)]])
        acf = np.concatenate([acf[:j], [0.0]])
    return float(np.sum(0.5 * (acf[1:] + acf[:-1]) * np.diff(lags)))


def _widths(rho, d, vec, pairs, max_lag, t_bin):
    """Radial and tangential correlation lengths (kpc) of the fluctuations of ``rho``."""
    delta = rho - rho.mean(axis=0)
    var = float((delta * delta).mean())
    if var <= 0:
        return float("nan"), float("nan")
    step = float(np.median(np.diff(d)))
    n_lag = max(int(round(max_lag / step)), 1)
    lags = np.arange(n_lag + 1) * step
    racf = np.array([1.0] + [float((delta[:, :-k] * delta[:, k:]).mean()) / var
                             for k in range(1, min(n_lag, d.size - 1) + 1)])
    radial = _correlation_length(lags[:racf.size], racf)
    i, j = pairs
    theta = 2.0 * np.arcsin(np.clip(0.5 * np.linalg.norm(vec[i] - vec[j], axis=1), 0, 1))
    n_bins = int(np.ceil(max_lag / t_bin))
    sums = np.zeros(n_bins)
    counts = np.zeros(n_bins)
    seps = np.zeros(n_bins)
    for lo in range(0, i.size, 20000):  # pairs in batches: memory stays bounded
        ii, jj = i[lo:lo + 20000], j[lo:lo + 20000]
        s = theta[lo:lo + 20000, None] * d[None, :]
        b = np.floor(s / t_bin).astype(np.int64)
        inside = b < n_bins
        prod = delta[ii] * delta[jj]
        sums += np.bincount(b[inside], prod[inside], n_bins)
        counts += np.bincount(b[inside], None, n_bins)
        seps += np.bincount(b[inside], s[inside], n_bins)
    has = counts > 0
    tlags = np.concatenate([[0.0], seps[has] / counts[has]])
    tacf = np.concatenate([[1.0], sums[has] / counts[has] / var])
    return radial, _correlation_length(tlags, tacf)


def fog_index(pred, truth, distances, lon, lat, *, scale=0.1, d_min=1.0,
              d_max=STRUCTURE_DMAX, max_lag=1.0, bin_kpc=0.025, max_pairs=200_000):
    """
    Fingers-of-God index: radial over tangential extent of density features,
    predicted against true.

    For each map (prediction, truth) the density fluctuations
    ``delta = density - mean over sightlines at that distance`` (the rings are
    `ring_share`'s business) are autocorrelated at nodes ``d_min <= d <= d_max``:
    along the sightlines, at lags of whole distance bins; across them, over
    all pairs of sightlines at the same distance, binned in their separation
    ``d * theta`` (``theta`` the angle between the sightlines) in bins of
    ``bin_kpc``. Each autocorrelation ``C`` is normalised by ``mean(delta**2)``
    (``C(0) = 1``) and its width is the correlation length, the integral of ``C``
    over the lag from 0 to its first zero (trapezoids; at most ``max_lag``): half
    the sampling step for structure the sampling does not resolve. The index is

        (radial length / tangential length)_pred / (radial length / tangential length)_truth

    1 for features shaped like the truth's; above 1 for features stretched along
    the sightlines (fingers of God); below 1 for features stretched across them
    (rings, arcs). Sightlines with a non-finite value are left out.

    Parameters
    ----------
    pred, truth : array, shape (n_sightlines, n_dist)
        Predicted and true cumulative A_V (mag).
    distances : array
        Distance nodes (kpc).
    lon, lat : array, shape (n_sightlines,)
        Galactic coordinates of the sightlines (deg).
    scale : float
        Smoothing of the density (kpc), as in `density`.
    d_min, d_max : float
        Range of distances used (kpc); nearby, neighbouring sightlines are only
        parsecs apart.
    max_lag : float
        Largest lag (kpc) of either autocorrelation.
    bin_kpc : float
        Width of the separation bins across the sightlines (kpc).
    max_pairs : int
        Pairs of sightlines closer than ``max_lag`` at ``d_min`` beyond this
        number are subsampled at random (with a fixed seed) for the tangential
        autocorrelation, so that large maps cost the same as the demo's.

    Returns
    -------
    `FoGIndex`
        The index (a float; NaN when a length is undefined), with the four
        correlation lengths as attributes.

    Examples
    --------
    Features twice as long along the sightlines as the truth's:

    >>> import numpy as np
    >>> from cnnext.metrics import fog_index
    >>> rng = np.random.default_rng(0)
    >>> lon, lat = np.meshgrid(np.arange(280, 300, 0.5), np.arange(-1, 1.01, 0.5))
    >>> d = np.arange(1, 101) * 0.1
    >>> field = rng.normal(size=(lon.size, 100))
    >>> truth = np.cumsum(np.exp(field), axis=1) * 0.1
    >>> pred = np.cumsum(np.exp(np.repeat(field[:, ::2], 2, axis=1)), axis=1) * 0.1
    >>> f = fog_index(pred, truth, d, lon.ravel(), lat.ravel())
    >>> round(float(f), 1), round(f.radial_pred / f.radial_truth, 1)
    (2.1, 2.1)
    """
    from scipy.spatial import cKDTree

    lon = np.asarray(lon, float)
    lat = np.asarray(lat, float)
    p, t, d, ok = _densities(pred, truth, distances, scale, d_max)
    if lon.shape != ok.shape or lat.shape != ok.shape:
        raise ValueError(f"lon and lat must have one value per sightline ({ok.size}), got "
                         f"{lon.shape} and {lat.shape}")
    use = d >= d_min
    p, t, d = p[:, use], t[:, use], d[use]
    lr, br = np.deg2rad(lon[ok]), np.deg2rad(lat[ok])
    vec = np.stack([np.cos(br) * np.cos(lr), np.cos(br) * np.sin(lr), np.sin(br)], axis=1)
    nan = float("nan")
    if len(p) < 2 or d.size < 2:
        return FoGIndex(nan, radial_pred=nan, tangential_pred=nan, radial_truth=nan,
                        tangential_truth=nan)
    # pairs closer than max_lag at the smallest distance used
    chord = 2.0 * np.sin(min(max_lag / d[0], np.pi) / 2.0)
    pairs = cKDTree(vec).query_pairs(chord, output_type="ndarray")
    if len(pairs) > max_pairs:
        pairs = pairs[np.random.default_rng(0).choice(len(pairs), max_pairs, replace=False)]
    rp, tp = _widths(p, d, vec, pairs.T, max_lag, bin_kpc)
    rt, tt = _widths(t, d, vec, pairs.T, max_lag, bin_kpc)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = (rp / tp) / (rt / tt)
    return FoGIndex(float(value), radial_pred=rp, tangential_pred=tp, radial_truth=rt,
                    tangential_truth=tt)


def structure_metrics(pred, truth, distances, *, lon=None, lat=None,
                      scales=STRUCTURE_SCALES, d_max=STRUCTURE_DMAX):
    """
    The structure metrics of predicted profiles against the truth, per smoothing scale.

    Parameters
    ----------
    pred, truth : array, shape (n_sightlines, n_dist)
        Predicted and true cumulative A_V (mag).
    distances : array
        Distance nodes (kpc).
    lon, lat : array, optional
        Galactic coordinates of the sightlines (deg): when given, the
        fingers-of-God index (`fog_index`, at the first scale) is computed too.
    scales : sequence of float
        Smoothing scales (kpc); default `STRUCTURE_SCALES`.
    d_max : float
        Largest distance (kpc); default `STRUCTURE_DMAX`.

    Returns
    -------
    `~astropy.table.QTable`
        One row per scale: ``scale`` (kpc), ``density_r`` (`density_correlation`),
        ``ring_share`` (`ring_share`), ``mean_density_ratio``
        (`mean_density_ratio`). ``meta`` holds ``n`` (sightlines used),
        ``ring_share_random`` (``1 / n``, the share of independent errors),
        ``d_max`` and, with coordinates, ``fog_index`` and its four widths (kpc).

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext.metrics import structure_metrics
    >>> d = np.arange(1, 101) * 0.1
    >>> rng = np.random.default_rng(2)
    >>> truth = np.cumsum(rng.exponential(size=(50, 100)), axis=1) / 10
    >>> # unrelated to the truth, plus 0.5 mag at 3.4 kpc on every sightline: a ring
    >>> pred = np.cumsum(rng.exponential(size=(50, 100)), axis=1) / 10 + (d > 3.35) * 0.5
    >>> t = structure_metrics(pred, truth, d)
    >>> t["ring_share"].round(2).tolist(), t.meta["n"], round(t.meta["ring_share_random"], 2)
    ([0.16, 0.13, 0.12], 50, 0.02)
    """
    distances = np.asarray(distances, float)
    rows = {"density_r": [], "ring_share": [], "mean_density_ratio": []}
    for s in scales:
        rows["density_r"].append(density_correlation(pred, truth, distances, scale=s,
                                                     d_max=d_max))
        rows["ring_share"].append(ring_share(pred, truth, distances, scale=s, d_max=d_max))
        rows["mean_density_ratio"].append(mean_density_ratio(pred, truth, distances,
                                                             scale=s, d_max=d_max))
    _, _, _, ok = _densities(pred, truth, distances, scales[0], d_max)
    table = QTable()
    table["scale"] = np.asarray(scales, float) * u.kpc
    for name, values in rows.items():
        table[name] = np.asarray(values, float)
    n = int(ok.sum())
    table.meta.update(n=n, ring_share_random=1.0 / n if n else float("nan"),
                      d_max=float(d_max))
    if lon is not None and lat is not None:
        f = fog_index(pred, truth, distances, lon, lat, scale=scales[0], d_max=d_max)
        table.meta.update(fog_index=float(f), fog_scale=float(scales[0]),
                          **{f"fog_{k}": float(v) for k, v in vars(f).items()})
    return table


def structure_summary(table):
    """
    A `structure_metrics` table as JSON-ready numbers (for metadata and reports).

    Returns
    -------
    dict
        ``{"<scale in pc>": {"density_r", "ring_share", "mean_density_ratio"}}``
        plus ``n``, ``ring_share_random`` and, when computed, ``fog_index`` and
        its correlation lengths, all rounded to 4 decimals; undefined values
        (NaN) are `None`, so that the dict is strict JSON.

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext.metrics import structure_metrics, structure_summary
    >>> d = np.arange(1, 101) * 0.1
    >>> truth = np.cumsum(np.random.default_rng(0).exponential(size=(3, 100)), axis=1)
    >>> s = structure_summary(structure_metrics(truth, truth, d, scales=(0.1,)))
    >>> s["100pc"]["ring_share"], s["100pc"]["density_r"], s["n"]
    (None, 1.0, 3)
    """
    def number(value):
        value = float(value)
        return round(value, 4) if np.isfinite(value) else None

    out = {}
    for row in table:
        key = f"{round(float(row['scale'].to_value(u.kpc)) * 1000):d}pc"
        out[key] = {name: number(row[name])
                    for name in ("density_r", "ring_share", "mean_density_ratio")}
    for key, value in table.meta.items():
        out[key] = number(value) if isinstance(value, float) else value
    return out


def blur_along_sightlines(av, distances, sigma):
    """
    Cumulative profiles whose density is blurred along each sightline.

    The extinction increment at each distance node is spread over the nodes
    around it as a Gaussian of standard deviation ``sigma`` (kpc; one width for
    all nodes, or one per node), reflected at the first and last node so that no
    extinction is lost, and the increments are summed again. Scored against the
    truth it came from (`structure_metrics`), a blurred truth is the reference
    for a map whose only fault is a limited resolution along the sightline — an
    error with no favoured distance. Where the sky's clouds sit at similar
    distances on many sightlines, such a map already has a ring share well above
    ``1 / n_sightlines``.

    Photometric distances are uncertain by a fraction of the distance (the
    absolute magnitudes of stars of one colour scatter), so a width growing with
    distance, such as ``0.15 * distances``, is the resolution a map made from
    stellar photometry can hope for; a constant width is a map gridded that
    coarsely.

    Parameters
    ----------
    av : array, shape (n_sightlines, n_dist)
        Cumulative A_V (mag) on equally spaced distance nodes.
    distances : array
        Distance nodes (kpc), equally spaced.
    sigma : float or array of shape (n_dist,)
        Standard deviation of the Gaussian (kpc), > 0: the same at every node,
        or the width given to the extinction of each node.

    Returns
    -------
    `numpy.ndarray`
        The blurred cumulative profiles, same shape; the total column of each
        sightline is kept.

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext.metrics import blur_along_sightlines
    >>> d = np.arange(1, 101) * 0.1
    >>> cloud = np.where(d >= 3.0, 2.0, 0.0)[None]  # 2 mag at 3 kpc
    >>> blurred = blur_along_sightlines(cloud, d, 0.3)
    >>> blurred[0, [23, 29, 35]].round(2).tolist()  # at 2.4, 3.0 and 3.6 kpc
    [0.07, 1.13, 1.97]
    >>> round(float(blurred[0, -1]), 6)  # the column is kept
    2.0
    >>> relative = blur_along_sightlines(cloud, d, 0.1 * d)  # 10 % of the distance:
    >>> relative[0, [23, 29, 35]].round(2).tolist()  # 0.3 kpc at 3 kpc, the same step
    [0.07, 1.13, 1.97]
    """
    distances = np.asarray(distances, float)
    av = _as_profiles(av, distances, "av")
    n = distances.size
    step = np.diff(np.concatenate([[0.0], distances]))
    if n > 1 and not np.allclose(step, step[0], rtol=1e-6):
        raise ValueError("blur_along_sightlines needs equally spaced distance nodes")
    widths = np.asarray(sigma, float)
    if widths.ndim == 0:
        widths = np.full(n, float(widths))
    if widths.shape != (n,) or not (np.all(np.isfinite(widths)) and np.all(widths > 0)):
        raise ValueError(f"sigma must be a positive number of kpc or one per distance "
                         f"node ({n}), got {sigma!r}")
    # kernel[i, j]: the share of node i's increment that lands on node j -- a
    # sampled Gaussian of radius 4 sigma, folded back at both ends (the
    # half-sample reflection of scipy.ndimage, which a constant width reproduces)
    kernel = np.zeros((n, n))
    for i, width in enumerate(widths / step[0]):
        radius = int(4.0 * width + 0.5)
        offsets = np.arange(-radius, radius + 1)
        weights = np.exp(-0.5 * (offsets / width) ** 2)
        j = np.mod(i + offsets, 2 * n)
        j = np.where(j >= n, 2 * n - 1 - j, j)
        np.add.at(kernel[i], j, weights / weights.sum())
    increments = np.diff(av, axis=1, prepend=0.0)
    return np.cumsum(increments @ kernel, axis=1)
