# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
A synthetic 2MASS sky with a known 3D extinction: the offline ground truth.

`MockSky` is a `~cnnext.stars.PhotometrySource`. Its dust density
(mag/kpc) is the smooth mean disc of `mean_dust_density`, modulated by a 3D
log-normal Gaussian random field over a Cartesian box around a sky region, by a
logarithmic spiral arm, plus discrete Gaussian clouds; all seeded. Its stars are
drawn from a `GalaxyModel` cell by cell (HEALPix, nested, Galactic, at the sky's
native order), reddened by the true cumulative A_V of their cell (along the ray
through the cell centre, evaluated at each star's distance) and observed with
`observe`. Every cell has its own random streams derived from ``(seed, cell)``,
so a cell's stars do not depend on how queries are batched.
"""

import hashlib
import json
import logging
from collections import OrderedDict

import astropy.units as u
import numpy as np
from astropy.table import vstack
from astropy_healpix import HEALPix, level_to_nside

from ..healpix import (
    cell_area,
    cell_centres,
    check_order,
    cover_cells,
    lonlat_to_cells,
    parent_cells,
)
from ..quality import BANDS
from ..stars import FLAG_COLUMNS, STAR_COLUMNS, PhotometrySource, empty_star_table
from .galaxy import GalaxyModel
from .observation import PhotometricModel, draw_bits, observe_table, reddening_law
from .profiles import DEFAULT_MEAN, ExtinctionProfiles, mean_dust_density

__all__ = ["MockSky"]

log = logging.getLogger(__name__)


def _unit_vectors(l, b):
    lr, br = np.deg2rad(l), np.deg2rad(b)
    return np.stack([np.cos(br) * np.cos(lr), np.cos(br) * np.sin(lr), np.sin(br)], axis=-1)


class MockSky(PhotometrySource):
    """
    A seeded synthetic sky with known 3D extinction, queried like 2MASS.

    Parameters
    ----------
    seed : int
        Seed of everything: the dust and every cell's stars.
    order : int
        Native HEALPix order of the sky's cells (7 ≈ 27.5′): stars are drawn per
        native cell and share that cell's extinction profile. Queries at other
        orders are answered from the native cells.
    region : tuple
        ``((l_min, l_max), (b_min, b_max))`` in deg where the dust has structure
        (random field and clouds); elsewhere only the smooth disc and the arm.
    max_distance : float
        Extent of the dust along each sightline (kpc); beyond it A_V is constant.
    step : float
        Distance step of the true profiles (kpc).
    sigma, outer_scale, beta : float
        Log-normal dispersion, outer scale (kpc) and 3D spectral index of the
        random field (P(k) ∝ (k² + k0²)^(-beta/2)).
    resolution : float
        Cell size of the random-field box (kpc).
    n_clouds : int
        Number of discrete clouds in the region.
    cloud_av : tuple
        Range of the central A_V of a cloud (mag, log-uniform).
    cloud_size : tuple
        Range of the Gaussian radius of a cloud (kpc, log-uniform).
    arm_contrast, arm_width, arm_pitch, arm_radius : float
        Spiral arm: density multiplied by ``1 + arm_contrast`` on its ridge, Gaussian
        half-width ``arm_width`` (kpc), pitch angle (deg) and Galactocentric radius
        at the Sun's azimuth (kpc).
    mean : dict, optional
        Overrides of the smooth mean density (see `mean_dust_density`).
    galaxy : `GalaxyModel`, optional
        Stellar model (default ``GalaxyModel()``).
    photometry : `PhotometricModel`, optional
        Mock observation (default ``PhotometricModel()``).
    law : `~cnnext.extinction.ExtinctionLaw`, optional
        Reddening law (default G23, R_V 3.1).
    faint_limit : float
        Faintest intrinsic Ks drawn (mag).
    star_distance : float
        Farthest star (kpc).
    cache_size : int
        Native cells whose intrinsic stars are kept in memory.

    Examples
    --------
    >>> from cnnext.synthetic import MockSky
    >>> from cnnext.healpix import lonlat_to_cells
    >>> sky = MockSky(seed=1)
    >>> cell = int(lonlat_to_cells(285.0, 0.5, 7))
    >>> stars = sky.query_cells([cell], 7)
    >>> bool((stars["cell"] == cell).all()) and len(stars) > 1000
    True
    >>> profile = sky.true_profile([cell])
    >>> profile.cumulative.shape
    (1, 1201)
    """

    def __init__(self, *, seed=0, order=7, region=((275.0, 305.0), (-4.0, 4.0)),
                 max_distance=12.0, step=0.01, sigma=1.0, outer_scale=0.2, beta=11.0 / 3.0,
                 resolution=0.05, n_clouds=150, cloud_av=(0.3, 8.0),
                 cloud_size=(0.01, 0.05), arm_contrast=2.0, arm_width=0.4,
                 arm_pitch=12.0, arm_radius=7.0, mean=None, galaxy=None, photometry=None,
                 law=None, faint_limit=15.5, star_distance=25.0, cache_size=2048):
        self.seed = int(seed)
        self.order = check_order(order)
        (l0, l1), (b0, b1) = region
        self.region = ((float(l0), float(l1)), (float(b0), float(b1)))
        if not (l1 > l0 and b1 > b0):
            raise ValueError(f"region must be ((l_min, l_max), (b_min, b_max)) with "
                             f"max > min, got {region!r}")
        self.max_distance = float(max_distance)
        self.step = float(step)
        self.sigma = float(sigma)
        self.outer_scale = float(outer_scale)
        self.beta = float(beta)
        self.resolution = float(resolution)
        self.n_clouds = int(n_clouds)
        self.cloud_av = tuple(float(v) for v in cloud_av)
        self.cloud_size = tuple(float(v) for v in cloud_size)
        self.arm_contrast = float(arm_contrast)
        self.arm_width = float(arm_width)
        self.arm_pitch = float(arm_pitch)
        self.arm_radius = float(arm_radius)
        self.mean = {**DEFAULT_MEAN, **(mean or {})}
        self.galaxy = GalaxyModel() if galaxy is None else galaxy
        self.photometry = PhotometricModel() if photometry is None else photometry
        self.law = reddening_law(law)
        self.faint_limit = float(faint_limit)
        self.star_distance = float(star_distance)
        self.cache_size = int(cache_size)
        self._stars = OrderedDict()
        self._profiles = {}
        self._field = None
        self._clouds = None
        # every parameter enters the key: caches of map builds must not mix skies
        digest = hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode())
        self.key = f"mocksky-s{self.seed}-o{self.order}-{digest.hexdigest()[:12]}"

    def __getstate__(self):
        # caches are rebuilt on demand (deterministically, from the seed)
        state = self.__dict__.copy()
        state.update(_stars=OrderedDict(), _profiles={}, _field=None, _clouds=None)
        return state

    def __repr__(self):
        (l0, l1), (b0, b1) = self.region
        return (f"<MockSky seed={self.seed}, order={self.order}, region l={l0:g}-{l1:g}, "
                f"b={b0:g}-{b1:g} deg, {self.n_clouds} clouds>")

    def to_dict(self):
        """Return the sky's parameters as a JSON-serialisable `dict`."""
        keys = ("seed", "order", "region", "max_distance", "step", "sigma", "outer_scale",
                "beta", "resolution", "n_clouds", "cloud_av", "cloud_size", "arm_contrast",
                "arm_width", "arm_pitch", "arm_radius", "mean", "faint_limit",
                "star_distance")
        d = {k: getattr(self, k) for k in keys}
        d["region"] = [list(v) for v in self.region]
        d["photometry"] = self.photometry.to_dict()
        d["law"] = self.law.to_dict()
        d["galaxy"] = self.galaxy.to_dict()
        return d

    # ------------------------------------------------------------------ the dust
    def _rng(self, *stream):
        return np.random.default_rng(np.random.SeedSequence([self.seed, *stream]))

    def _build_field(self):
        """3D log-normal random field on a Cartesian box around the region."""
        (l0, l1), (b0, b1) = self.region
        ll, bb, dd = np.meshgrid(np.linspace(l0, l1, 25), np.linspace(b0, b1, 9),
                                 np.linspace(0.0, self.max_distance, 25), indexing="ij")
        xyz = _unit_vectors(ll, bb) * dd[..., None]
        pad = 4 * self.resolution
        lo = xyz.reshape(-1, 3).min(axis=0) - pad
        hi = xyz.reshape(-1, 3).max(axis=0) + pad
        shape = tuple(int(np.ceil((h - a) / self.resolution)) + 1 for a, h in zip(lo, hi))
        # a periodic box at least one outer scale larger than needed, so the wrap
        # does not correlate opposite faces
        padded = tuple(n + int(np.ceil(2 * self.outer_scale / self.resolution))
                       for n in shape)
        rng = self._rng(1)
        white = np.fft.rfftn(rng.standard_normal(padded))
        k = [2 * np.pi * np.fft.fftfreq(n, d=self.resolution) for n in padded[:-1]]
        k.append(2 * np.pi * np.fft.rfftfreq(padded[-1], d=self.resolution))
        k2 = (k[0][:, None, None] ** 2 + k[1][None, :, None] ** 2
              + k[2][None, None, :] ** 2)
        k0 = 2 * np.pi / self.outer_scale
        power = (k2 + k0 ** 2) ** (-self.beta / 2.0)
        field = np.fft.irfftn(white * np.sqrt(power), s=padded, axes=(0, 1, 2))
        field = field[:shape[0], :shape[1], :shape[2]]
        field *= self.sigma / field.std()
        self._field = (lo, field.astype(np.float32))

    def _build_clouds(self):
        (l0, l1), (b0, b1) = self.region
        rng = self._rng(2)
        n = self.n_clouds
        # clouds in a thin layer, preferentially on the arm
        cand = 20 * max(n, 1)
        l = rng.uniform(l0, l1, cand)
        d = np.cbrt(rng.uniform(0.3 ** 3, min(10.0, self.max_distance) ** 3, cand))
        z = rng.normal(0.0, 0.06, cand)
        b = np.rad2deg(np.arcsin(np.clip((z - self.mean["z_sun"]) / d, -1, 1)))
        inside = (b >= b0) & (b <= b1)
        arm = self._arm_factor(l, b, d)
        accept = inside & (rng.random(cand) * (1 + self.arm_contrast) < arm)
        idx = np.flatnonzero(accept)[:n]
        m = len(idx)
        size = np.exp(rng.uniform(*np.log(self.cloud_size), m))
        column = np.exp(rng.uniform(*np.log(self.cloud_av), m))
        centre = _unit_vectors(l[idx], b[idx]) * d[idx, None]
        self._clouds = {"centre": centre, "size": size, "column": column,
                        "l": l[idx], "b": b[idx], "distance": d[idx]}

    @property
    def clouds(self):
        """The discrete clouds: ``centre`` (kpc, heliocentric x, y, z), ``size`` (kpc),
        ``column`` (A_V through the centre, mag), ``l``, ``b``, ``distance``."""
        if self._clouds is None:
            self._build_clouds()
        return self._clouds

    def _arm_factor(self, l, b, d):
        p = self.mean
        lr, br = np.deg2rad(l), np.deg2rad(b)
        x = d * np.cos(br) * np.cos(lr)
        y = d * np.cos(br) * np.sin(lr)
        R = np.hypot(p["R0"] - x, y)
        phi = np.arctan2(y, p["R0"] - x)
        # logarithmic spiral R = R_arm exp(-phi tan(pitch)), unwrapped to the nearest
        # winding; radial offset times cos(pitch) is the distance to the ridge
        t = np.tan(np.deg2rad(self.arm_pitch))
        lnr = np.log(R / self.arm_radius) + phi * t
        period = 2 * np.pi * t
        lnr = (lnr + period / 2) % period - period / 2
        offset = R * (1 - np.exp(-lnr)) * np.cos(np.deg2rad(self.arm_pitch))
        return 1.0 + self.arm_contrast * np.exp(-0.5 * (offset / self.arm_width) ** 2)

    def density(self, l, b, distance):
        """
        Return the smooth part of the dust density (mag/kpc), without the clouds.

        Parameters
        ----------
        l, b : array-like
            Galactic coordinates (deg).
        distance : array-like
            Distances (kpc); all three broadcast together.
        """
        from scipy.ndimage import map_coordinates

        if self._field is None:
            self._build_field()
        l, b, d = np.broadcast_arrays(np.asarray(l, float), np.asarray(b, float),
                                      np.asarray(distance, float))
        rho = mean_dust_density(l, b, d, **self.mean) * self._arm_factor(l, b, d)
        lo, field = self._field
        xyz = _unit_vectors(l, b) * d[..., None]
        pos = (xyz - lo) / self.resolution
        shape = np.array(field.shape)
        inside = np.all((pos >= 0) & (pos <= shape - 1), axis=-1)
        g = np.zeros(l.shape)
        if np.any(inside):
            g[inside] = map_coordinates(field, pos[inside].T, order=1, mode="nearest")
        # log-normal factor with mean 1 inside the box, 1 outside
        factor = np.where(inside, np.exp(g - 0.5 * self.sigma ** 2), 1.0)
        return rho * factor

    def _ray_profiles(self, l, b):
        """Cumulative A_V on the fine grid along rays (l, b): ``(n, n_grid)``."""
        from scipy.special import ndtr

        l = np.atleast_1d(np.asarray(l, float))
        b = np.atleast_1d(np.asarray(b, float))
        n_fine = int(round(self.max_distance / self.step))
        grid = np.arange(n_fine + 1) * self.step
        centres = grid[:-1] + 0.5 * self.step
        rho = self.density(l[:, None], b[:, None], centres[None, :])
        inc = rho * self.step
        clouds = self.clouds
        if len(clouds["size"]):
            u_ray = _unit_vectors(l, b)  # (n, 3)
            c = clouds["centre"]
            t = u_ray @ c.T  # (n, m): distance along the ray of closest approach
            impact2 = np.sum(c ** 2, axis=1)[None, :] - t ** 2
            s = clouds["size"][None, :]
            weight = clouds["column"][None, :] * np.exp(-0.5 * np.clip(impact2, 0, None)
                                                         / s ** 2)
            ray, cl = np.nonzero((weight > 1e-4) & (t > -5 * s))
            if len(ray):
                cdf = ndtr((grid[None, :] - t[ray, cl][:, None]) / s[0, cl][:, None])
                contrib = np.diff(cdf, axis=1) * weight[ray, cl][:, None]
                np.add.at(inc, ray, contrib)
        cum = np.zeros((len(l), n_fine + 1))
        np.cumsum(inc, axis=1, out=cum[:, 1:])
        return grid, cum

    def true_av(self, l, b, distance):
        """
        Return the true cumulative A_V (mag) to (l, b, distance), along each exact ray.

        Parameters
        ----------
        l, b : array-like
            Galactic coordinates (deg).
        distance : array-like
            Distances (kpc); broadcast with ``l`` and ``b``.

        Returns
        -------
        av : `numpy.ndarray`
            The broadcast shape of the inputs.
        """
        l, b, d = np.broadcast_arrays(np.asarray(l, float), np.asarray(b, float),
                                      np.asarray(distance, float))
        shape = l.shape
        grid, cum = self._ray_profiles(l.ravel(), b.ravel())
        # one ray per position: its own distance on its own profile
        av = ExtinctionProfiles(grid, cum).at(d.ravel()[:, None])
        return av.reshape(shape)

    def true_profile(self, cells, order=None):
        """
        Return the true cumulative A_V profiles of cells (along their centre rays).

        Parameters
        ----------
        cells : array-like of int
            Nested Galactic HEALPix cells.
        order : int, optional
            Their order (default: the sky's native order, whose profiles redden the
            stars).

        Returns
        -------
        profiles : `ExtinctionProfiles`
            One profile per cell on ``0, step, …, max_distance`` kpc; use
            ``.at(distances)`` or ``.nodes(node_distances)``.
        """
        order = self.order if order is None else check_order(order)
        cells = np.atleast_1d(np.asarray(cells, dtype=np.int64))
        todo = [c for c in np.unique(cells) if (order, int(c)) not in self._profiles]
        if todo:
            lon, lat = cell_centres(np.array(todo), order)
            grid, cum = self._ray_profiles(lon, lat)
            for c, row in zip(todo, cum):
                self._profiles[(order, int(c))] = row
        n_fine = int(round(self.max_distance / self.step))
        grid = np.arange(n_fine + 1) * self.step
        cum = np.array([self._profiles[(order, int(c))] for c in cells]).reshape(
            len(cells), n_fine + 1)
        return ExtinctionProfiles(grid, cum, {"cell": cells},
                                  {"source": self.key, "order": order})

    # ----------------------------------------------------------------- the stars
    def intrinsic_stars(self, cell):
        """
        Return the intrinsic stars of one native cell (cached), positions inside it.

        Returns
        -------
        stars : `~astropy.table.Table`
            The `GalaxyModel.sample` schema.
        """
        cell = int(cell)
        if cell in self._stars:
            self._stars.move_to_end(cell)
            return self._stars[cell]
        lon, lat = cell_centres(np.array([cell]), self.order)
        rng = self._rng(3, self.order, cell)
        stars = self.galaxy.sample(float(lon[0]), float(lat[0]), cell_area(self.order),
                                   max_distance=self.star_distance,
                                   faint_limit=self.faint_limit, seed=rng, positions=False)
        hp = HEALPix(nside=level_to_nside(self.order), order="nested")
        n = len(stars)
        pl, pb = hp.healpix_to_lonlat(np.full(n, cell), dx=rng.random(n), dy=rng.random(n))
        stars["l"] = pl.to_value(u.deg)
        stars["b"] = pb.to_value(u.deg)
        self._stars[cell] = stars
        if len(self._stars) > self.cache_size:
            self._stars.popitem(last=False)
        return stars

    def _observe_native(self, cells):
        cells = np.unique(np.asarray(cells, dtype=np.int64))
        if not len(cells):
            t = empty_star_table()
            t["cell"] = np.zeros(0, dtype=np.int64)
            return t
        profiles = self.true_profile(cells)
        columns = {k: [] for k in ("l", "b", "J", "H", "Ks")}
        av, cell_of, bits = [], [], {band: [] for band in BANDS}
        for k, cell in enumerate(cells):
            stars = self.intrinsic_stars(cell)
            for name in columns:
                columns[name].append(np.asarray(stars[name]))
            av.append(profiles[k].at(np.asarray(stars["distance"]))[0])
            cell_of.append(np.full(len(stars), cell, dtype=np.int64))
            # each cell's own random stream: independent of the batching
            cell_bits = draw_bits(self._rng(4, self.order, int(cell)), len(stars))
            for band in bits:
                bits[band].append(cell_bits[band])
        columns = {k: np.concatenate(v) for k, v in columns.items()}
        bits = {band: np.concatenate(v, axis=1) for band, v in bits.items()}
        cell_of = np.concatenate(cell_of)
        obs, keep = observe_table(columns, np.concatenate(av), self.law, self.photometry,
                                   bits, return_keep=True)
        obs["cell"] = cell_of[keep]
        return obs

    def fetch_cells(self, cells, order, *, progress_bar=False):
        """
        The observed stars of checked ``cells`` at ``order``: stars come from the
        native cells covering them (a tqdm bar over batches of native cells with
        ``progress_bar``).
        """
        native = cover_cells(cells, order, self.order)
        batches = [native[i:i + 64] for i in range(0, len(native), 64)]
        if progress_bar:
            from tqdm.auto import tqdm

            batches = tqdm(batches, desc="mock sky", unit="batch")
        parts = [self._observe_native(batch) for batch in batches]
        stars = vstack(parts, metadata_conflicts="silent") if parts else \
            self._observe_native([])
        if order > self.order:
            cell = lonlat_to_cells(stars["l"], stars["b"], order)
            stars["cell"] = cell
            stars = stars[np.isin(cell, cells)]
        elif order < self.order:
            stars["cell"] = parent_cells(stars["cell"], self.order, order)
        return stars

    def fetch_cone(self, centre, radius_deg):
        """The observed stars of the native cells the cone touches."""
        hp = HEALPix(nside=level_to_nside(self.order), order="nested")
        # the cone search lists cells whose centres are inside; widen by a cell
        pad = hp.pixel_resolution.to(u.deg) * 1.5
        native = hp.cone_search_lonlat(centre.l, centre.b, radius_deg * u.deg + pad)
        stars = self._observe_native(native)
        return stars[list(STAR_COLUMNS) + list(FLAG_COLUMNS) + ["cell"]]
