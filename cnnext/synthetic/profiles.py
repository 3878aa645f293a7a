# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Random extinction profiles: 1D log-normal Gaussian random fields along sightlines.

The dust density along a sightline is

    dA_V/ds = A · μ(s) · exp(g(s) − σ²/2) + discrete clouds,

with μ(s) a smooth mean (0.7 mag/kpc in the plane at the Sun, exponential in height
above a warped dust mid-plane with a 125 pc scale height, exponential in
Galactocentric radius), g a Gaussian random field with power spectrum
P(k) ∝ (k² + k0²)^(−β/2) (k0 = 2π / outer scale) drawn by FFT on a periodic box
at least twice the sightline, A a log-uniform amplitude and 0-3 Gaussian clouds
of log-uniform A_V. Every hyperparameter is drawn per profile from the ranges
given to `random_profiles` (recorded in ``ExtinctionProfiles.hyper``).
"""

import numpy as np

__all__ = ["ExtinctionProfiles", "random_profiles", "mean_dust_density",
           "DEFAULT_HYPER"]

#: Default ranges of the per-profile hyperparameters of `random_profiles`.
DEFAULT_HYPER = {
    "sigma": (0.5, 2.0),            # log-normal dispersion of the density
    "outer_scale": (0.05, 1.0),     # kpc, log-uniform
    "beta": (1.4, 2.2),             # spectral index, uniform
    "amplitude": (0.2, 5.0),        # multiplies the mean density, log-uniform
    "n_clouds": (0, 3),             # integers, uniform, inclusive
    "cloud_av": (0.1, 10.0),        # A_V of one cloud (mag), log-uniform
    "cloud_width": (0.005, 0.05),   # kpc (Gaussian sigma), log-uniform
    "cloud_distance": (0.1, 10.0),  # kpc, uniform
}

#: Parameters of the smooth mean dust density (our choices after Marshall et al. 2006).
DEFAULT_MEAN = {
    "density": 0.7,          # mag/kpc in the mid-plane at the Sun
    "scale_height": 0.125,   # kpc
    "scale_length": 3.0,     # kpc (radial fall-off)
    "warp_start": 8.7,       # kpc
    "warp_slope": 0.14,      # kpc of mid-plane rise per kpc of radius (times sin phi)
    "R0": 8.5,               # kpc
    "z_sun": 0.015,          # kpc
}


def mean_dust_density(l, b, distance, **mean):
    """
    Return the smooth mean dust density dA_V/ds (mag/kpc) along sightlines.

    Parameters
    ----------
    l, b : float or array-like
        Galactic coordinates (deg); broadcast against ``distance``.
    distance : array-like
        Distances (kpc).
    **mean
        Overrides of ``DEFAULT_MEAN`` (``density``, ``scale_height``,
        ``scale_length``, ``warp_start``, ``warp_slope``, ``R0``, ``z_sun``).

    Examples
    --------
    >>> from cnnext.synthetic import mean_dust_density
    >>> float(mean_dust_density(280.0, 90.0, 0.0))  # doctest: +FLOAT_CMP
    0.6208443057020102
    """
    p = dict(DEFAULT_MEAN)
    unknown = set(mean) - set(p)
    if unknown:
        raise TypeError(f"unknown mean-density parameters {sorted(unknown)}; "
                        f"known: {sorted(p)}")
    p.update(mean)
    lr, br = np.deg2rad(np.asarray(l, float)), np.deg2rad(np.asarray(b, float))
    d = np.asarray(distance, dtype=float)
    x = d * np.cos(br) * np.cos(lr)
    y = d * np.cos(br) * np.sin(lr)
    z = d * np.sin(br) + p["z_sun"]
    R = np.hypot(p["R0"] - x, y)
    sin_phi = np.divide(y, R, out=np.zeros(np.broadcast(y, R).shape), where=R > 0)
    zw = np.where(R > p["warp_start"], p["warp_slope"] * (R - p["warp_start"]) * sin_phi,
                  0.0)
    return (p["density"] * np.exp(-np.abs(z - zw) / p["scale_height"])
            * np.exp(-(R - p["R0"]) / p["scale_length"]))


class ExtinctionProfiles:
    """
    A set of cumulative A_V profiles on a common distance grid.

    Parameters
    ----------
    distances : array-like
        Increasing grid distances (kpc), shape ``(n_grid,)``; usually starting at 0.
    cumulative : array-like
        Cumulative A_V (mag) at those distances, shape ``(n_profiles, n_grid)``.
    params : dict, optional
        Per-profile hyperparameters (arrays of length ``n_profiles``).
    hyper : dict, optional
        The settings that drew them (for metadata).

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext.synthetic import ExtinctionProfiles
    >>> p = ExtinctionProfiles([0.0, 1.0, 2.0], [[0.0, 1.0, 3.0]])
    >>> p.at([0.5, 1.5, 5.0])  # doctest: +FLOAT_CMP
    array([[0.5, 2. , 3. ]])
    """

    def __init__(self, distances, cumulative, params=None, hyper=None):
        self.distances = np.asarray(distances, dtype=float)
        self.cumulative = np.atleast_2d(np.asarray(cumulative, dtype=float))
        if self.distances.ndim != 1 or self.cumulative.shape[1] != len(self.distances):
            raise ValueError(f"cumulative must have shape (n_profiles, {len(self.distances)}),"
                             f" got {self.cumulative.shape}")
        if np.any(np.diff(self.distances) <= 0):
            raise ValueError("profile distances must be strictly increasing")
        self.params = dict(params or {})
        self.hyper = dict(hyper or {})
        d = self.distances
        step = d[1] - d[0] if len(d) > 1 else 1.0
        self._uniform = len(d) > 1 and np.allclose(np.diff(d), step, rtol=1e-9, atol=1e-12)
        self._step = step

    def __len__(self):
        return self.cumulative.shape[0]

    def __repr__(self):
        return (f"<ExtinctionProfiles: {len(self)} profiles on {len(self.distances)} "
                f"distances {self.distances[0]:g}-{self.distances[-1]:g} kpc>")

    def __getitem__(self, item):
        if isinstance(item, (int, np.integer)):
            item = [int(item)]
        params = {k: np.asarray(v)[item] for k, v in self.params.items()}
        return ExtinctionProfiles(self.distances, self.cumulative[item], params, self.hyper)

    def _weights(self, distances):
        d = np.asarray(distances, dtype=float)
        g = self.distances
        if self._uniform:
            pos = (d - g[0]) / self._step
            i = np.clip(np.floor(pos).astype(np.int64), 0, len(g) - 2)
        else:
            i = np.clip(np.searchsorted(g, d, side="right") - 1, 0, len(g) - 2)
            pos = i + (d - g[i]) / (g[i + 1] - g[i])
        w = np.clip(pos - i, 0.0, 1.0)
        return i, w

    def at(self, distances):
        """
        Return cumulative A_V (mag) at arbitrary distances (kpc).

        Linear between grid points, constant beyond the last, and scaled linearly
        to 0 at distance 0 before the first grid point when it is not 0.

        Parameters
        ----------
        distances : array-like
            Shape ``(m,)`` (the same distances for every profile), or
            ``(n_profiles, m)`` (different distances per profile).

        Returns
        -------
        av : `numpy.ndarray`
            Shape ``(n_profiles, m)``.
        """
        d = np.asarray(distances, dtype=float)
        cum = self.cumulative
        if d.ndim <= 1:
            d1 = np.atleast_1d(d)
            i, w = self._weights(d1)
            out = cum[:, i] * (1.0 - w) + cum[:, i + 1] * w
        elif d.ndim == 2 and d.shape[0] == len(self):
            i, w = self._weights(d)
            out = (np.take_along_axis(cum, i, axis=1) * (1.0 - w)
                   + np.take_along_axis(cum, i + 1, axis=1) * w)
        else:
            raise ValueError(f"distances must have shape (m,) or ({len(self)}, m), "
                             f"got {d.shape}")
        first = self.distances[0]
        if first > 0:
            near = d < first
            if np.any(near):
                scaled = cum[:, :1] * np.clip(d / first, 0.0, None)
                out = np.where(near, scaled if d.ndim == 2 else scaled[:, :], out)
        return out

    def nodes(self, node_distances):
        """Return cumulative A_V (mag) at the model's distance nodes, ``(n, n_nodes)``."""
        return self.at(np.asarray(node_distances, dtype=float))

    def total(self, distance=10.0):
        """Return the cumulative A_V (mag) of every profile at one distance (kpc)."""
        return self.at([float(distance)])[:, 0]


def _as_array(x, n, name):
    a = np.asarray(x, dtype=float)
    if a.ndim == 0:
        return np.full(n, float(a))
    if a.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {a.shape}")
    return a


def _range(hyper, key):
    lo, hi = hyper[key]
    if hi < lo:
        raise ValueError(f"hyperparameter range {key} must be (min, max) with min <= max, "
                         f"got {hyper[key]!r}")
    return float(lo), float(hi)


def random_profiles(n, *, l=280.0, b=0.0, seed=None, max_distance=12.0, step=0.01,
                    mean=None, **hyper):
    """
    Draw ``n`` random cumulative A_V profiles (log-normal random fields and clouds).

    Parameters
    ----------
    n : int
        Number of profiles.
    l, b : float or array-like
        Galactic coordinates (deg) of the sightlines, scalar or one per profile;
        they set the smooth mean density (height above the dust disc, radius).
    seed : int, `numpy.random.Generator` or None
        Random seed; the same seed gives the same profiles.
    max_distance : float
        Last distance of the fine grid (kpc).
    step : float
        Fine-grid spacing (kpc); 0.01 (10 pc) by default.
    mean : dict, optional
        Overrides of the smooth mean density (see `mean_dust_density`).
    **hyper
        Ranges overriding `DEFAULT_HYPER`, each a ``(min, max)`` tuple:
        ``sigma``, ``outer_scale`` (kpc, log-uniform), ``beta``, ``amplitude``
        (log-uniform), ``n_clouds`` (integers, inclusive), ``cloud_av`` (mag,
        log-uniform), ``cloud_width`` (kpc, log-uniform), ``cloud_distance``
        (kpc, uniform). Use ``(x, x)`` to fix a value.

    Returns
    -------
    profiles : `ExtinctionProfiles`
        Cumulative A_V at ``distances = 0, step, …, max_distance``; the drawn
        hyperparameters are in ``profiles.params``.

    Examples
    --------
    >>> from cnnext.synthetic import random_profiles
    >>> p = random_profiles(4, l=280.0, b=0.0, seed=1)
    >>> p.cumulative.shape
    (4, 1201)
    >>> bool((p.total(10.0) > 0).all())
    True
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    unknown = set(hyper) - set(DEFAULT_HYPER)
    if unknown:
        raise TypeError(f"unknown profile hyperparameters {sorted(unknown)}; "
                        f"known: {sorted(DEFAULT_HYPER)}")
    if not (step > 0 and max_distance > step):
        raise ValueError(f"need 0 < step < max_distance, got step={step!r}, "
                         f"max_distance={max_distance!r}")
    h = dict(DEFAULT_HYPER)
    h.update({k: tuple(v) for k, v in hyper.items()})
    rng = np.random.default_rng(seed)
    n_fine = int(round(max_distance / step))
    grid = np.arange(n_fine + 1) * step
    centres = (np.arange(n_fine) + 0.5) * step
    l = _as_array(l, n, "l")
    b = _as_array(b, n, "b")

    def loguniform(key):
        lo, hi = _range(h, key)
        return np.exp(rng.uniform(np.log(lo), np.log(hi), n))

    sigma = rng.uniform(*_range(h, "sigma"), n)
    outer = loguniform("outer_scale")
    beta = rng.uniform(*_range(h, "beta"), n)
    amp = loguniform("amplitude")
    lo_c, hi_c = (int(v) for v in _range(h, "n_clouds"))
    n_clouds = rng.integers(lo_c, hi_c + 1, n)
    max_c = max(hi_c, 0)
    cloud_av = np.exp(rng.uniform(*np.log(_range(h, "cloud_av")), (n, max_c)))
    cloud_w = np.exp(rng.uniform(*np.log(_range(h, "cloud_width")), (n, max_c)))
    cloud_d = rng.uniform(*_range(h, "cloud_distance"), (n, max_c))
    cloud_av = np.where(np.arange(max_c)[None, :] < n_clouds[:, None], cloud_av, 0.0)

    # Gaussian random field on a periodic box >= twice the sightline, cropped
    n_box = 1 << int(np.ceil(np.log2(2 * n_fine)))
    k = 2.0 * np.pi * np.fft.rfftfreq(n_box, d=step)  # rad/kpc
    k0 = 2.0 * np.pi / outer
    power = (k[None, :] ** 2 + k0[:, None] ** 2) ** (-beta[:, None] / 2.0)
    # variance of the filtered unit white noise: mean of the two-sided spectrum
    two_sided = power.sum(axis=1) * 2.0 - power[:, 0]
    if n_box % 2 == 0:
        two_sided -= power[:, -1]
    var = two_sided / n_box
    white = np.fft.rfft(rng.standard_normal((n, n_box)), axis=1)
    field = np.fft.irfft(white * np.sqrt(power), n=n_box, axis=1)[:, :n_fine]
    field *= (sigma / np.sqrt(var))[:, None]

    mu = mean_dust_density(l[:, None], b[:, None], centres[None, :], **(mean or {}))
    density = amp[:, None] * mu * np.exp(field - 0.5 * sigma[:, None] ** 2)
    increments = density * step
    if max_c:
        from scipy.special import ndtr

        # Gaussian clouds integrated exactly over each fine cell
        edges = (grid[None, None, :] - cloud_d[:, :, None]) / cloud_w[:, :, None]
        cdf = ndtr(edges)
        increments += np.einsum("nc,ncg->ng", cloud_av, np.diff(cdf, axis=2))
    cumulative = np.zeros((n, n_fine + 1))
    np.cumsum(increments, axis=1, out=cumulative[:, 1:])
    params = {"l": l, "b": b, "sigma": sigma, "outer_scale": outer, "beta": beta,
              "amplitude": amp, "n_clouds": n_clouds, "cloud_av": cloud_av,
              "cloud_width": cloud_w, "cloud_distance": cloud_d}
    record = {k: list(v) for k, v in h.items()}
    record.update({"step": step, "max_distance": max_distance,
                   "mean": {**DEFAULT_MEAN, **(mean or {})}})
    return ExtinctionProfiles(grid, cumulative, params, record)
