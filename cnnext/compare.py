# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Query several 3D dust maps on the same coordinates and compare them in one quantity.

Every map speaks its own unit: `dustmaps.marshall.MarshallQuery` returns A_Ks,
`dustmaps.bayestar.BayestarQuery` (Bayestar19) an arbitrary reddening unit,
`dustmaps.edenhofer2023.Edenhofer2023Query` the extinction "E" of Zhang, Green &
Rix (2023), a `~cnnext.CNNExtinctionMap` A_V (or any band). This module converts
them all to A_V, A_Ks (or another 2MASS band) or E(B-V) and says, in the output
table's ``meta["conversions"]``, exactly which factor was applied to which map and
where it comes from.

Conversions (per unit of the map's native quantity):

- **Marshall et al. (2006)**: native A_Ks; other bands through the extinction law
  (``A_V = A_Ks / (A_Ks/A_V)``).
- **Bayestar19** (Green et al. 2019): 2MASS coefficients of their Table 1
  (A_J = 0.7927, A_H = 0.4690, A_Ks = 0.3026 per unit), E(B-V) = 0.884 per unit
  (Green et al. 2019 / argonaut.skymaps.info, from Schlafly & Finkbeiner 2011 with
  the F99 R_V = 3.1 law), and A_V = 2.742 per unit: Bayestar19's E(g-r)_P1 per unit,
  3.518 - 2.617 = 0.901, is exactly Schlafly & Finkbeiner's (2011, Table 6)
  E(g-r)_P1 per unit of SFD E(B-V), so one unit is one unit of E(B-V)_SFD and
  A_V = 2.742 E(B-V)_SFD (their Table 6, Landolt V, R_V = 3.1). This equals
  3.1 x 0.884 = 2.740; multiplying 2.742 by 0.884 again would count the SFD
  recalibration twice. The factors are for Bayestar19; pass ``units=`` for
  Bayestar17/15.
- **Edenhofer et al. (2023)**: A_V = 2.8 E, the conversion given with the map's
  data release (E is the unit of Zhang, Green & Rix 2023); other bands through the
  extinction law. A density map (``integrated=False``, E per pc) is integrated
  along each sightline over its radial bins (density x bin width; dust inside the
  first bin boundary, 69 pc for the real map, is left out); ``integrated=True``
  uses the map's own integration.
- **cnnext maps**: queried directly in the requested band with the map's own
  extinction law (the law that reddened the model's training stars).
- Any other `~dustmaps.map_base.DustMap`: give its native quantity with
  ``units={"name": "E(B-V)"}`` (or a `MapUnits`).

The scores of a map against a truth (`error_metrics`, `relative_error`,
`REL_ERR_FLOOR`) live in `cnnext.metrics` and are importable from here too.
"""

import logging
import warnings
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import QTable

from .extinction import BAND_NAMES, ExtinctionLaw

# the scores moved to cnnext.metrics; importable from here as before
from .metrics import REL_ERR_FLOOR, error_metrics, relative_error

__all__ = ["MapUnits", "KNOWN_UNITS", "DEFAULT_DISTANCES", "query_maps",
           "compare_profiles", "compare_slice", "error_metrics", "relative_error",
           "plot_profiles", "plot_slices", "REL_ERR_FLOOR"]

log = logging.getLogger(__name__)

#: Distances (kpc) used when none are given: 0.1-10 kpc every 100 pc.
DEFAULT_DISTANCES = np.round(np.arange(1, 101) * 0.1, 10)

_LABELS = {"V": "A_V", "J": "A_J", "H": "A_H", "Ks": "A_Ks", "E(B-V)": "E(B-V)"}


def _band_key(quantity, name="quantity"):
    key = BAND_NAMES.get(quantity) if isinstance(quantity, str) else None
    if key is None:
        raise ValueError(f"{name} must be one of 'A_V', 'A_J', 'A_H', 'A_Ks', 'E(B-V)' "
                         f"(or 'V', 'J', 'H', 'Ks'), got {quantity!r}")
    return key


@dataclass(frozen=True)
class MapUnits:
    """
    The native quantity of a dust map and how to convert it.

    Parameters
    ----------
    native : str
        Human-readable name of what the map returns.
    band : str, optional
        When the map returns an extinction in a band cnnext knows (``"V"``, ``"J"``,
        ``"H"``, ``"Ks"``, ``"E(B-V)"``): that band. Conversions then go through the
        extinction law.
    to_av : float, optional
        A_V per native unit (for maps in their own units).
    direct : dict, optional
        Published factors ``{band: A_band per native unit}`` used in preference to
        the law.
    reference : str
        Where the factors come from (copied into the comparison table).

    Examples
    --------
    >>> from cnnext.compare import KNOWN_UNITS
    >>> from cnnext import ExtinctionLaw
    >>> factor, how = KNOWN_UNITS["bayestar2019"].factor("A_V", ExtinctionLaw("G23"))
    >>> factor
    2.742
    >>> KNOWN_UNITS["marshall2006"].factor("A_Ks", ExtinctionLaw("G23"))[0]
    1.0
    """

    native: str
    band: str = None
    to_av: float = None
    direct: dict = field(default_factory=dict)
    reference: str = ""

    def __post_init__(self):
        if self.band is not None:
            object.__setattr__(self, "band", _band_key(self.band, "band"))
        if self.band is None and self.to_av is None and not self.direct:
            raise ValueError("MapUnits needs band, to_av or direct factors")

    def factor(self, quantity, law):
        """
        Return ``(factor, statement)``: multiply the native values by ``factor`` to
        get ``quantity``; ``statement`` says how the factor was obtained.
        """
        key = _band_key(quantity)
        label = _LABELS[key]
        ref = f" [{self.reference}]" if self.reference else ""
        if self.band == key:
            return 1.0, f"{label} = native {self.native}{ref}"
        if key in self.direct:
            f = float(self.direct[key])
            return f, f"{label} = {f:g} x {self.native}{ref}"
        law_name = f"{law.name} R_V={law.Rv:g}"
        if self.band is not None:
            f = law.ratio(key) / law.ratio(self.band)
            ratios = [f"{_LABELS[b]}/A_V = {law.ratio(b):.4g}" for b in (key, self.band)
                      if b != "V"]
            return f, (f"{label} = {f:.4g} x {self.native} (law {law_name}: "
                       f"{', '.join(ratios)}){ref}")
        f = float(self.to_av) * law.ratio(key)
        if key == "V":
            return f, f"A_V = {f:g} x {self.native}{ref}"
        return f, (f"{label} = {float(self.to_av):g} x {law.ratio(key):.4g} x {self.native} "
                   f"(A_V = {float(self.to_av):g} x native; law {law_name}){ref}")


#: Units of the maps cnnext knows, by default name.
KNOWN_UNITS = {
    "marshall2006": MapUnits(
        "A_Ks (Marshall et al. 2006)", band="Ks",
        reference="Marshall et al. 2006, A&A 453, 635: 2MASS Ks extinction"),
    "bayestar2019": MapUnits(
        "Bayestar19 reddening unit", to_av=2.742,
        direct={"V": 2.742, "E(B-V)": 0.884, "J": 0.7927, "H": 0.4690, "Ks": 0.3026},
        reference="Green et al. 2019, ApJ 887, 93, Table 1 and argonaut.skymaps.info "
                  "(E(B-V) = 0.884 x unit); A_V = 2.742 x E(B-V)_SFD, Schlafly & "
                  "Finkbeiner 2011 Table 6, one unit = one E(B-V)_SFD"),
    "edenhofer2023": MapUnits(
        "E (Zhang, Green & Rix 2023 unit)", to_av=2.8,
        reference="Edenhofer et al. 2024, A&A 685, A82 (data release, "
                  "doi:10.5281/zenodo.8187943): A_V = 2.8 x E"),
}

_CLASS_NAMES = {"MarshallQuery": "marshall2006", "BayestarQuery": "bayestar2019",
                "BayestarWebQuery": "bayestar2019", "Edenhofer2023Query": "edenhofer2023",
                "CNNExtinctionMap": "cnnext"}


def _is_cnnext(m):
    from .map import CNNExtinctionMap

    return isinstance(m, CNNExtinctionMap)


def _default_name(m):
    return _CLASS_NAMES.get(type(m).__name__, type(m).__name__.lower())


def _as_named(maps):
    """Return an ordered ``{name: map}`` from a map, a list of maps or a dict."""
    if isinstance(maps, dict):
        named = dict(maps)
    else:
        if not isinstance(maps, (list, tuple)):
            maps = [maps]
        named = {}
        for m in maps:
            name = base = _default_name(m)
            i = 2
            while name in named:
                name, i = f"{base}_{i}", i + 1
            named[name] = m
    if not named:
        raise ValueError("maps is empty: give at least one dust map")
    from .profiles import ProfileMap

    for name, m in list(named.items()):
        if isinstance(m, ProfileMap):  # a map in memory (read_map, build_map)
            from .map import CNNExtinctionMap

            named[name] = m = CNNExtinctionMap(map_fname=m)
        if not callable(getattr(m, "query", None)):
            raise TypeError(f"map {name!r} ({type(m).__name__}) has no query() method; "
                            f"give dustmaps DustMap objects or CNNExtinctionMap")
    return named


def _units_for(name, m, units):
    given = (units or {}).get(name)
    if isinstance(given, MapUnits):
        return given
    if isinstance(given, str):
        if given in KNOWN_UNITS:
            return KNOWN_UNITS[given]
        return MapUnits(_LABELS[_band_key(given, f"units[{name!r}]")], band=given,
                        reference="as declared by the caller")
    if given is not None:
        raise TypeError(f"units[{name!r}] must be a MapUnits or a quantity name, "
                        f"got {given!r}")
    key = _CLASS_NAMES.get(type(m).__name__)
    if key in KNOWN_UNITS:
        return KNOWN_UNITS[key]
    raise ValueError(f"cnnext does not know the units of map {name!r} "
                     f"({type(m).__name__}); pass units={{{name!r}: 'E(B-V)'}} (or the "
                     f"quantity it returns, or a cnnext.compare.MapUnits)")


def _default_law(named, law):
    if law is not None:
        return law if isinstance(law, ExtinctionLaw) else ExtinctionLaw.from_dict(law)
    for m in named.values():
        if _is_cnnext(m) and isinstance(getattr(m, "law", None), ExtinctionLaw):
            return m.law
    return ExtinctionLaw("G23", 3.1)


def _query_native(name, m, coords, mode, want_sigma):
    """Query one non-cnnext map on flat Galactic coords with distances."""
    cls = type(m).__name__
    n = coords.shape[0]
    sigma = np.full(n, np.nan)
    if cls == "MarshallQuery":
        value, sig = m.query(coords, return_sigma=True)
        return np.asarray(value, float), np.asarray(sig, float)
    if cls in ("BayestarQuery", "BayestarWebQuery"):
        value = np.asarray(m.query(coords, mode=mode), float)
        if want_sigma and cls == "BayestarQuery":
            with warnings.catch_warnings():
                # coordinates outside the map's footprint are all-NaN: NaN is the answer
                warnings.filterwarnings("ignore", message="All-NaN slice",
                                        category=RuntimeWarning)
                pct = m.query(coords, mode="percentile", pct=[15.865, 84.135])
            lo, hi = np.moveaxis(np.asarray(pct, float), -1, 0)
            sigma = 0.5 * (hi - lo)
        return value, sigma
    if cls == "Edenhofer2023Query":
        if not getattr(m, "integrated", False):
            return _integrate_density(m, coords, mode), sigma
        value = np.asarray(m.query(coords, mode=mode), float)
        if want_sigma:
            try:
                sigma = np.asarray(m.query(coords, mode="std"), float)
            except ValueError:  # no samples loaded: the integrated map has no std
                pass
        return value, sigma
    try:
        value = m.query(coords, mode=mode)
    except TypeError:  # maps whose query() takes no mode
        value = m.query(coords)
    return np.asarray(value, float), sigma


def _integrate_density(m, coords, mode):
    """
    Cumulative extinction of an extinction-density map (Edenhofer2023Query with
    ``integrated=False``) by summing density x bin width along each sightline.

    The density is taken at the map's radial bin centres, constant within a bin;
    the partial last bin counts up to the requested distance. Dust closer than the
    map's first bin boundary is not included; outside the map's distance range the
    result is NaN. Each distinct (l, b) is integrated once.
    """
    bounds = m.distance_bounds.to_value(u.pc)
    centres = 0.5 * (bounds[1:] + bounds[:-1])
    lb = np.stack([coords.l.deg, coords.b.deg], axis=1)
    uniq, inverse = np.unique(lb, axis=0, return_inverse=True)
    inverse = np.reshape(inverse, -1)
    n_u, n_r = uniq.shape[0], centres.size
    # dustmaps interpolates between bin centres and answers NaN exactly at the first
    # one: nudge the sample points a hair inside the centres' span
    nudge = np.full(n_r, 1.0 + 1e-9)
    nudge[-1] = 1.0 - 1e-9
    grid = SkyCoord(l=np.repeat(uniq[:, 0], n_r) * u.deg, b=np.repeat(uniq[:, 1], n_r) * u.deg,
                    distance=np.tile(centres * nudge, n_u) * u.pc, frame="galactic")
    density = np.reshape(np.asarray(m.query(grid, mode=mode), float), (n_u, n_r))
    cum = np.concatenate([np.zeros((n_u, 1)), np.cumsum(density * np.diff(bounds), axis=1)],
                         axis=1)
    d = coords.distance.to_value(u.pc)
    k = np.clip(np.searchsorted(bounds, d, side="right") - 1, 0, n_r - 1)
    rows = inverse
    value = cum[rows, k] + density[rows, k] * (d - bounds[k])
    return np.where((d >= bounds[0]) & (d <= bounds[-1]), value, np.nan)


def _flat_galactic(coords):
    if not isinstance(coords, SkyCoord):
        raise TypeError(f"coords must be an astropy SkyCoord, got {type(coords).__name__}")
    gal = coords.galactic
    shape = gal.shape
    d = gal.distance
    if d is None or d.unit is u.one or d.unit == u.dimensionless_unscaled:
        raise ValueError("coords must carry distances (SkyCoord(..., distance=...)): "
                         "comparisons are made at given distances")
    flat = SkyCoord(l=np.reshape(gal.l.deg, -1) * u.deg, b=np.reshape(gal.b.deg, -1) * u.deg,
                    distance=np.reshape(d.to_value(u.kpc), -1) * u.kpc, frame="galactic")
    return flat, shape


def query_maps(maps, coords, *, quantity="A_V", law=None, mode="mean", units=None,
               return_sigma=True):
    """
    Query several dust maps at the same 3D positions, in one quantity.

    Parameters
    ----------
    maps : DustMap, list of DustMap or dict of str to DustMap
        `dustmaps` query objects and/or `~cnnext.CNNExtinctionMap` objects (or
        `~cnnext.profiles.ProfileMap` maps in memory). With a
        list, columns are named after the map (``marshall2006``, ``bayestar2019``,
        ``edenhofer2023``, ``cnnext``…); with a dict, after its keys.
    coords : `~astropy.coordinates.SkyCoord`
        Positions with distances, any frame and shape (flattened in the table).
    quantity : str
        ``"A_V"`` (default), ``"A_J"``, ``"A_H"``, ``"A_Ks"`` or ``"E(B-V)"``.
    law : `~cnnext.extinction.ExtinctionLaw`, optional
        Law for band-to-band conversions of the other maps. Default: the law of the
        first cnnext map given, else G23 with R_V = 3.1.
    mode : str or dict
        Passed to the maps that take one (``"mean"``, ``"median"``, ``"best"``…);
        a dict ``{name: mode}`` sets it per map (others use ``"mean"``).
    units : dict, optional
        ``{name: MapUnits or quantity}`` for maps cnnext does not know, or to
        override a known conversion (e.g. Bayestar17).
    return_sigma : bool
        Add a ``<name>_sigma`` column (NaN where the map gives no uncertainty):
        Marshall's sigma_A, Bayestar's half 16-84 percentile range, Edenhofer's std
        when samples are loaded, cnnext's 1-sigma.

    Returns
    -------
    `~astropy.table.QTable`
        Columns ``l``, ``b`` (deg), ``distance`` (kpc), then one column per map
        (mag). ``meta`` holds ``quantity``, ``law`` and ``conversions``
        (``{name: statement}``) and ``factors`` (``{name: factor}``). Outside a
        map's footprint its values are NaN.

    Examples
    --------
    >>> import numpy as np, astropy.units as u
    >>> from astropy.coordinates import SkyCoord
    >>> from cnnext.compare import query_maps
    >>> from cnnext.testing.dustmaps import write_marshall_h5
    >>> import tempfile, pathlib, warnings
    >>> with warnings.catch_warnings():  # dustmaps warns when ~/.dustmapsrc is missing
    ...     warnings.simplefilter("ignore")
    ...     from dustmaps.marshall import MarshallQuery
    >>> path = write_marshall_h5(pathlib.Path(tempfile.mkdtemp()) / "marshall.h5")
    >>> c = SkyCoord(l=[-75.0, -75.0] * u.deg, b=[0.1, 0.1] * u.deg,
    ...              distance=[2.0, 4.0] * u.kpc, frame="galactic")
    >>> t = query_maps({"marshall": MarshallQuery(path)}, c, quantity="A_Ks")
    >>> t["marshall"].to_value(u.mag).round(4)
    array([0.2, 0.4])
    >>> t.meta["conversions"]["marshall"][:24]
    'A_Ks = native A_Ks (Mars'
    """
    key = _band_key(quantity)
    named = _as_named(maps)
    law = _default_law(named, law)
    flat, shape = _flat_galactic(coords)
    n = flat.shape[0]
    table = QTable()
    table["l"] = flat.l.deg * u.deg
    table["b"] = flat.b.deg * u.deg
    table["distance"] = flat.distance.to(u.kpc)
    conversions, factors = {}, {}
    modes = dict(mode) if isinstance(mode, dict) else dict.fromkeys(named, mode)
    unknown = set(modes) - set(named)
    if unknown:
        raise ValueError(f"mode names maps that are not compared: {sorted(unknown)}")
    for name, m in named.items():
        mode_m = modes.get(name, "mean")
        if _is_cnnext(m):
            out = m.query(flat, mode=mode_m, return_sigma=return_sigma, band=key)
            value, sigma = out if return_sigma else (out, np.full(n, np.nan))
            mlaw = getattr(m, "law", None)
            conversions[name] = (f"{_LABELS[key]} from the map's own law"
                                 + (f" ({mlaw!r})" if mlaw is not None else ""))
            factors[name] = 1.0
        else:
            mu = _units_for(name, m, units)
            f, statement = mu.factor(key, law)
            value, sigma = _query_native(name, m, flat, mode_m, return_sigma)
            if type(m).__name__ == "Edenhofer2023Query" and not m.integrated:
                statement += ("; E integrated by cnnext from the density (E/pc) over the "
                              "map's radial bins, from its first bin boundary")
            value, sigma = value * f, sigma * f
            conversions[name], factors[name] = statement, f
        table[name] = np.reshape(np.asarray(value, float), n) * u.mag
        if return_sigma:
            table[f"{name}_sigma"] = np.reshape(np.asarray(sigma, float), n) * u.mag
        log.debug("queried %s: %s", name, conversions[name])
    table.meta.update(quantity=_LABELS[key], law=law.to_dict(), conversions=conversions,
                      factors=factors, mode=modes, shape=tuple(shape))
    return table


def _distances_kpc(distances):
    if distances is None:
        return DEFAULT_DISTANCES.copy()
    d = distances.to_value(u.kpc) if isinstance(distances, u.Quantity) else \
        np.asarray(distances, float)
    d = np.atleast_1d(d).astype(float)
    if d.ndim != 1 or d.size == 0 or np.any(~np.isfinite(d)) or np.any(d <= 0):
        raise ValueError("distances must be a non-empty 1D array of positive distances "
                         "(kpc or a Quantity)")
    return d


def _lb(coord):
    if isinstance(coord, SkyCoord):
        if not coord.isscalar:
            raise ValueError("coord must be a single position (scalar SkyCoord)")
        g = coord.galactic
        return float(g.l.deg), float(g.b.deg)
    try:
        l, b = coord
        return float(l), float(b)
    except (TypeError, ValueError):
        raise TypeError("coord must be a scalar SkyCoord or an (l, b) pair in degrees") \
            from None


def compare_profiles(maps, coord, *, distances=None, **kwargs):
    """
    Extinction profiles of several maps along one sightline.

    Parameters
    ----------
    maps : DustMap, list or dict
        As in `query_maps`.
    coord : `~astropy.coordinates.SkyCoord` or (l, b)
        The sightline (scalar; (l, b) in Galactic degrees).
    distances : Quantity or array, optional
        Distances (kpc when plain numbers); default `DEFAULT_DISTANCES`.
    **kwargs
        ``quantity``, ``law``, ``mode``, ``units``, ``return_sigma`` of `query_maps`.

    Returns
    -------
    `~astropy.table.QTable`
        One row per distance (see `query_maps`); ``meta["kind"] = "profile"``.

    Examples
    --------
    Two small maps made on the spot (any `dustmaps` map works the same way):

    >>> import numpy as np
    >>> from cnnext import CNNExtinctionMap
    >>> from cnnext.healpix import lonlat_to_cells
    >>> from cnnext.profiles import ProfileMap
    >>> d = np.arange(1, 101) * 0.1
    >>> cells = np.unique(lonlat_to_cells([284.0, 285.0, 286.0], [0.0, 0.0, 0.0], 7))
    >>> def simple_map(rate):  # A_V = rate x d (kpc) on three cells
    ...     av = np.outer(np.ones(cells.size), rate * d)
    ...     return CNNExtinctionMap(map_fname=ProfileMap(
    ...         cells=cells, order=7, distances=d, av=av, sigma=0.1 * av,
    ...         n_stars=np.full(cells.size, 500)))
    >>> from cnnext.compare import compare_profiles
    >>> t = compare_profiles({"low": simple_map(0.7), "high": simple_map(0.9)},
    ...                      (285.0, 0.0), distances=[1, 2, 4])
    >>> t.colnames
    ['l', 'b', 'distance', 'low', 'low_sigma', 'high', 'high_sigma']
    >>> t["high"].round(2)  # A_V at 1, 2 and 4 kpc
    <Quantity [0.9, 1.8, 3.6] mag>
    """
    l, b = _lb(coord)
    d = _distances_kpc(distances)
    coords = SkyCoord(l=np.full(d.size, l) * u.deg, b=np.full(d.size, b) * u.deg,
                      distance=d * u.kpc, frame="galactic")
    table = query_maps(maps, coords, **kwargs)
    table.meta["kind"] = "profile"
    return table


def compare_slice(maps, l, *, b=0.0, distances=None, **kwargs):
    """
    A longitude-distance slice of several maps at fixed latitude.

    Parameters
    ----------
    maps : DustMap, list or dict
        As in `query_maps`.
    l : array-like or Quantity
        Galactic longitudes (deg).
    b : float or Quantity
        Galactic latitude of the slice (deg).
    distances : Quantity or array, optional
        Distances (kpc when plain numbers); default `DEFAULT_DISTANCES`.
    **kwargs
        ``quantity``, ``law``, ``mode``, ``units``, ``return_sigma`` of `query_maps`.

    Returns
    -------
    `~astropy.table.QTable`
        One row per longitude: ``l``, ``b`` and, per map, a vector column of length
        ``len(distances)``; ``meta["distances"]`` (kpc) and ``meta["kind"] =
        "slice"``.

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext import CNNExtinctionMap
    >>> from cnnext.healpix import lonlat_to_cells
    >>> from cnnext.profiles import ProfileMap
    >>> d = np.arange(1, 101) * 0.1
    >>> cells = np.unique(lonlat_to_cells([284.0, 285.0, 286.0], [0.0, 0.0, 0.0], 7))
    >>> def simple_map(rate):  # A_V = rate x d (kpc) on three cells
    ...     av = np.outer(np.ones(cells.size), rate * d)
    ...     return CNNExtinctionMap(map_fname=ProfileMap(
    ...         cells=cells, order=7, distances=d, av=av, sigma=0.1 * av,
    ...         n_stars=np.full(cells.size, 500)))
    >>> from cnnext.compare import compare_slice
    >>> s = compare_slice({"low": simple_map(0.7), "high": simple_map(0.9)},
    ...                   [284.0, 285.0, 286.0], b=0.0, distances=d)
    >>> s["low"].shape  # one profile per longitude
    (3, 100)
    >>> s["high"][:, 19]  # A_V at 2 kpc  # doctest: +FLOAT_CMP
    <Quantity [1.8, 1.8, 1.8] mag>
    """
    lv = np.atleast_1d(l.to_value(u.deg) if isinstance(l, u.Quantity) else
                       np.asarray(l, float)).astype(float)
    bv = float(b.to_value(u.deg) if isinstance(b, u.Quantity) else b)
    d = _distances_kpc(distances)
    ll, dd = np.meshgrid(lv, d, indexing="ij")
    coords = SkyCoord(l=ll * u.deg, b=np.full(ll.shape, bv) * u.deg, distance=dd * u.kpc,
                      frame="galactic")
    flat = query_maps(maps, coords, **kwargs)
    table = QTable()
    table["l"] = lv * u.deg
    table["b"] = np.full(lv.size, bv) * u.deg
    for name in flat.colnames[3:]:
        table[name] = np.reshape(flat[name].to_value(u.mag), ll.shape) * u.mag
    table.meta.update(flat.meta)
    table.meta.update(kind="slice", distances=d.tolist())
    return table


def plot_profiles(table, **kwargs):
    """
    Draw a `compare_profiles` table: one profile per map, with its 1-sigma band.

    Same as `cnnext.plotting.plot_comparison_profiles`, which shows the figure.

    Parameters
    ----------
    table : `~astropy.table.QTable`
        Output of `compare_profiles`.
    **kwargs
        ``ax`` (axes to draw on) and ``truth`` (a true profile at the table's
        distances, in mag).

    Returns
    -------
    `~matplotlib.axes.Axes`

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext import CNNExtinctionMap
    >>> from cnnext.healpix import lonlat_to_cells
    >>> from cnnext.profiles import ProfileMap
    >>> d = np.arange(1, 101) * 0.1
    >>> cells = np.unique(lonlat_to_cells([284.0, 285.0, 286.0], [0.0, 0.0, 0.0], 7))
    >>> def simple_map(rate):  # A_V = rate x d (kpc) on three cells
    ...     av = np.outer(np.ones(cells.size), rate * d)
    ...     return CNNExtinctionMap(map_fname=ProfileMap(
    ...         cells=cells, order=7, distances=d, av=av, sigma=0.1 * av,
    ...         n_stars=np.full(cells.size, 500)))
    >>> from cnnext.compare import compare_profiles, plot_profiles
    >>> t = compare_profiles({"low": simple_map(0.7), "high": simple_map(0.9)},
    ...                      (285.0, 0.0), return_sigma=True)
    >>> ax = plot_profiles(t)
    >>> ax.figure.savefig("profiles.png")  # doctest: +SKIP
    """
    from .plotting import plot_comparison_profiles

    return plot_comparison_profiles(table, **kwargs)


def plot_slices(table, **kwargs):
    """
    Draw a `compare_slice` table: one longitude-distance panel per map.

    Same as `cnnext.plotting.plot_comparison_slices`, which shows the figure.

    Parameters
    ----------
    table : `~astropy.table.QTable`
        Output of `compare_slice`.
    **kwargs
        ``fig``, ``vmax`` (mag) and ``cmap`` of
        `~cnnext.plotting.plot_comparison_slices`.

    Returns
    -------
    `~matplotlib.figure.Figure`

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext import CNNExtinctionMap
    >>> from cnnext.healpix import lonlat_to_cells
    >>> from cnnext.profiles import ProfileMap
    >>> d = np.arange(1, 101) * 0.1
    >>> cells = np.unique(lonlat_to_cells([284.0, 285.0, 286.0], [0.0, 0.0, 0.0], 7))
    >>> def simple_map(rate):  # A_V = rate x d (kpc) on three cells
    ...     av = np.outer(np.ones(cells.size), rate * d)
    ...     return CNNExtinctionMap(map_fname=ProfileMap(
    ...         cells=cells, order=7, distances=d, av=av, sigma=0.1 * av,
    ...         n_stars=np.full(cells.size, 500)))
    >>> from cnnext.compare import compare_slice, plot_slices
    >>> s = compare_slice({"low": simple_map(0.7), "high": simple_map(0.9)},
    ...                   [284.0, 285.0, 286.0], distances=d)
    >>> fig = plot_slices(s)
    >>> [ax.get_title() for ax in fig.axes[:2]]
    ['low', 'high']
    """
    from .plotting import plot_comparison_slices

    return plot_comparison_slices(table, **kwargs)
