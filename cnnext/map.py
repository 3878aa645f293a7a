# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
`CNNExtinctionMap`: the :mod:`dustmaps`-compatible query class.

It answers like any `dustmaps.map_base.DustMap` (``query``, ``__call__``,
``query_gal``, ``query_equ``), from a map file made by `~cnnext.build_map`
(offline) or by computing the sightlines it does not know yet from 2MASS
photometry with the CNN, keeping them in a persistent on-disk cache.

Values are plain `numpy` arrays in magnitudes (A_V by default), like the other
dustmaps maps. The uncertainty model behind the ``median``, ``percentile``,
``samples`` and ``random_sample`` modes is described in `CNNExtinctionMap.query` and
implemented in `cnnext.sampling`.
"""

import logging
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import (
    Galactic,
    SkyCoord,
    SphericalRepresentation,
    UnitSphericalRepresentation,
)

from .exceptions import CnnextWarning
from .extinction import ExtinctionLaw
from .healpix import check_order
from .io.mapfile import read_map
from .observation import DESCRIPTORS
from .profiles import FLAG_FEW_STARS, FLAG_NO_DATA, FLAG_OUTSIDE_MODEL, FLAG_PARTIAL, ProfileMap
from .provider import ProfileStore
from .sampling import DistanceNodes, cells_of, check_pct, interpolate, profile_values

with warnings.catch_warnings():
    # dustmaps warns at import time when ~/.dustmapsrc is missing or overridden; cnnext
    # does not use dustmaps' data directory, so the warning would only confuse users
    warnings.filterwarnings("ignore", message="Configuration file not found")
    warnings.filterwarnings("ignore", message="Overriding default configuration file")
    from dustmaps.map_base import DustMap

__all__ = ["CNNExtinctionMap", "MODES", "FLAGS_DTYPE"]

log = logging.getLogger(__name__)

#: Query modes understood by `CNNExtinctionMap.query`.
MODES = ("mean", "median", "percentile", "samples", "random_sample", "random_sample_per_pix")
#: dtype of the structured array returned with ``return_flags=True``.
FLAGS_DTYPE = np.dtype([("n_stars", "i8"), ("flags", "i4"), ("dmin", "f8"),
                        ("dmax", "f8")] + [(name, "f4") for name in DESCRIPTORS])

class CNNExtinctionMap(DustMap):
    """
    3D dust extinction from the cnnext CNN, with the :mod:`dustmaps` interface.

    Two ways to answer:

    - **File mode** (``map_fname``): profiles come from a map file written by
      `~cnnext.build_map` / `~cnnext.profiles.ProfileMap.write`; nothing is
      computed and nothing is downloaded. Cells not in the map give NaN.
    - **On-the-fly mode** (no ``map_fname``, or ``map_fname`` *and* ``source``):
      a cell not known yet is computed from the stars of ``source`` with the
      network, in batches, and kept in a persistent cache keyed by the model's
      SHA-256, the source's ``key`` and the cell, so that it is never computed
      twice — also across processes and sessions. Computing a cell twice at the
      same time in two processes is harmless; threads sharing one map object
      never compute a cell twice.

    Parameters
    ----------
    model : str, path-like or `~cnnext.model.CNNModel`, optional
        The network (on-the-fly mode); default the shipped model. Not used (not
        even loaded) in file mode without ``source``.
    source : `~cnnext.photometry.base.PhotometrySource`, optional
        Where on-the-fly stars come from; default
        `~cnnext.photometry.VizierSource` (2MASS from VizieR).
    map_fname : str, path-like or `~cnnext.profiles.ProfileMap`, optional
        A cnnext map file (or a map already in memory): file mode.
    cache : bool or path-like
        On-the-fly mode: `True` (default) keeps computed profiles under
        ``<cnnext cache dir>/profiles`` (see ``cnnext.conf.cache_dir``); a path
        uses that folder; `False` keeps them in memory only.
    providers : str or list
        onnxruntime execution providers for the model (``"auto"``: CUDA when it
        really works, else CPU; ``"cpu"``; ``"cuda"``; or a list).
    batch_size : int, optional
        Cells per inference batch (default ``cnnext.conf.batch_size``).
    chunk_size : int
        Cells fetched, computed and cached together in on-the-fly mode; a failure
        loses at most one chunk.
    progress_bar : bool
        Show progress bars while computing cells.
    mask_outside_model : bool
        Return NaN for cells outside the model's training region (default); with
        `False` those predictions are returned (still flagged).

    Raises
    ------
    ModelFileError, MapFileError
        The model or map file is missing or corrupted (the message names it).
    ValueError
        ``map_fname`` and ``model`` disagree (HEALPix order or model hash).

    Notes
    -----
    Besides `query`, the class answers through the methods it inherits from
    `dustmaps.map_base.DustMap`, as every dustmaps map does. They build a
    `~astropy.coordinates.SkyCoord` and call `query` with the other keyword
    arguments (``mode``, ``return_sigma``, ``band``…), so they return the same
    values: extinction in magnitudes, NaN outside the map.

    .. py:method:: __call__(coords, **kwargs)

       Same as ``query(coords, **kwargs)``: ``m(coords)``.

    .. py:method:: query_gal(l, b, d=None, **kwargs)

       Query at Galactic coordinates: ``l`` and ``b`` in degrees (or angle
       Quantities), ``d`` the distance in **kpc** (or a length Quantity). Without
       ``d``: the whole profile at `distances`.

    .. py:method:: query_equ(ra, dec, d=None, frame="icrs", **kwargs)

       Query at equatorial coordinates: ``ra`` and ``dec`` in degrees (or angle
       Quantities) in ``frame``, ``d`` the distance in **kpc** (or a length
       Quantity). Without ``d``: the whole profile at `distances`.

    Examples
    --------
    File mode, from a small map written on the spot:

    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> import astropy.units as u
    >>> from astropy.coordinates import SkyCoord
    >>> from cnnext import CNNExtinctionMap
    >>> from cnnext.healpix import lonlat_to_cells
    >>> from cnnext.profiles import ProfileMap
    >>> d = np.array([1.0, 2.0, 3.0])
    >>> pm = ProfileMap(cells=[lonlat_to_cells(280.0, 0.0, 7)], order=7, distances=d,
    ...                 av=[[1.0, 3.0, 4.0]], sigma=[[0.1, 0.2, 0.3]], n_stars=[500],
    ...                 meta={"extinction_law": {"name": "G23", "Rv": 3.1, "coefficients":
    ...                       {"J": 0.28, "H": 0.17, "Ks": 0.107}}})
    >>> path = pm.write(pathlib.Path(tempfile.mkdtemp()) / "map.fits")
    >>> m = CNNExtinctionMap(map_fname=path)
    >>> m.distances
    <Quantity [1., 2., 3.] kpc>
    >>> c = SkyCoord(280.0 * u.deg, 0.0 * u.deg, distance=[0.5, 1.5, 9.0] * u.kpc,
    ...              frame="galactic")
    >>> m(c)  # doctest: +FLOAT_CMP
    array([0.5, 2. , 4. ])
    >>> float(m.query(c[1], band="Ks"))  # doctest: +FLOAT_CMP
    0.214
    >>> m.query_gal(280.0, 0.0)  # the whole profile  # doctest: +FLOAT_CMP
    array([1., 3., 4.])
    """

    def __init__(self, *, model=None, source=None, map_fname=None, cache=True,
                 providers="auto", batch_size=None, chunk_size=1024, progress_bar=False,
                 mask_outside_model=True):
        super().__init__()
        if int(chunk_size) < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size!r}")
        self._mask_outside = bool(mask_outside_model)
        self._warned = set()
        self._model = None
        self._source = None
        profile_cache = None
        file_map = None
        if map_fname is not None:
            file_map = map_fname if isinstance(map_fname, ProfileMap) else \
                read_map(map_fname)
        self._online = file_map is None or source is not None
        if self._online:
            from .model import CNNModel
            from .sightlines import profile_meta

            self._model = model if isinstance(model, CNNModel) else \
                CNNModel(model, providers=providers)
            if source is None:
                from .photometry.vizier import VizierSource

                source = VizierSource()
            if not callable(getattr(source, "query_cells", None)):
                raise TypeError(f"source must be a cnnext PhotometrySource (with "
                                f"query_cells), got {type(source).__name__}")
            self._source = source
            meta = profile_meta(self._model, source_key=getattr(source, "key", None))
            if file_map is not None:
                self._check_map_model(file_map)
            else:
                nd = len(self._model.distances)
                file_map = ProfileMap(cells=np.zeros(0, np.int64), order=self._model.order,
                                      distances=self._model.distances,
                                      av=np.zeros((0, nd)), sigma=np.zeros((0, nd)),
                                      n_stars=np.zeros(0), meta=meta)
            if cache is not False and cache is not None:
                from .io.cache import ProfileCache, default_cache_root

                root = default_cache_root() if cache is True else Path(cache)
                profile_cache = ProfileCache(root, model_sha256=self._model.sha256,
                                             source_key=getattr(source, "key", "unknown"),
                                             order=self._model.order,
                                             distances=self._model.distances, meta=meta)
            self._law = self._model.law
        else:
            law = file_map.meta.get("extinction_law")
            self._law = ExtinctionLaw.from_dict(law) if law else None
        self._order = check_order(file_map.order)
        self._nodes = np.asarray(file_map.distances, dtype=float)
        self._locator = DistanceNodes(self._nodes)
        self._store = ProfileStore(file_map, source=self._source, model=self._model,
                                   cache=profile_cache, batch_size=batch_size,
                                   chunk_size=chunk_size, progress_bar=progress_bar)

    def _check_map_model(self, file_map):
        if file_map.order != self._model.order:
            raise ValueError(f"map_fname has HEALPix order {file_map.order} but the model "
                             f"uses order {self._model.order}")
        sha = file_map.meta.get("model_sha256")
        if sha and sha != self._model.sha256:
            raise ValueError(f"map_fname was made with model {sha[:12]}…, not with the given "
                             f"model {self._model.sha256[:12]}…; their profiles cannot be "
                             f"mixed")
        if file_map.distances.shape != self._model.distances.shape or not np.allclose(
                file_map.distances, self._model.distances):
            raise ValueError("map_fname and the model have different distance nodes")

    def __repr__(self):
        what = f"on the fly from {self._source.key!r}" if self._online else "from a map file"
        return (f"<CNNExtinctionMap {what}: {len(self.profile_map)} cells known, HEALPix order "
                f"{self._order}, {self._nodes.size} distances>")

    @property
    def distances(self):
        """Distance nodes of the profiles (`~astropy.units.Quantity`, kpc)."""
        return self._nodes * u.kpc

    @property
    def profile_map(self):
        """The profiles known so far, as a `~cnnext.profiles.ProfileMap` (can be written)."""
        return self._store.profile_map

    @property
    def model(self):
        """The `~cnnext.model.CNNModel` (on-the-fly mode) or `None` (file mode)."""
        return self._model

    @property
    def law(self):
        """The `~cnnext.extinction.ExtinctionLaw` used for band conversions (or `None`)."""
        return self._law

    # --- coordinates -> cells -> rows ------------------------------------------------

    @staticmethod
    def _galactic(coords):
        """Flat Galactic lon, lat (deg) and distance (kpc, or None) of any SkyCoord."""
        frame = coords.frame if coords.frame.name == "galactic" else \
            coords.transform_to("galactic").frame
        data = frame.data
        if isinstance(data, UnitSphericalRepresentation):
            dist = None
        else:
            if not isinstance(data, SphericalRepresentation):
                data = data.represent_as(SphericalRepresentation)
            dist = data.distance
            dist = dist.to_value(u.kpc) if dist.unit.physical_type == "length" else None
        lon = np.reshape(data.lon.to_value(u.deg), -1)
        lat = np.reshape(data.lat.to_value(u.deg), -1)
        if dist is not None:
            dist = np.reshape(np.asarray(dist, dtype=float), -1)
            if np.any(dist < 0):
                raise ValueError("coords has negative distances; distances must be >= 0")
            own = coords.frame.data
            if frame is not coords.frame and isinstance(own, SphericalRepresentation) and \
                    np.any(dist == 0):
                # a point at zero distance loses its direction in the transformation
                # (through cartesian coordinates); take it from the direction alone
                zero = np.flatnonzero(dist == 0)
                unit = coords.frame.realize_frame(
                    own.represent_as(UnitSphericalRepresentation)).transform_to(
                        Galactic()).data
                lon[zero] = np.reshape(unit.lon.to_value(u.deg), -1)[zero]
                lat[zero] = np.reshape(unit.lat.to_value(u.deg), -1)[zero]
        return lon, lat, dist

    def prefetch(self, coords):
        """
        Make sure the cells of ``coords`` are computed (on-the-fly mode) and cached.

        Useful before a loop of small queries. Does nothing in file mode.
        """
        if not isinstance(coords, SkyCoord):
            raise TypeError(f"coords must be an astropy SkyCoord, got {type(coords).__name__}")
        lon, lat, _ = self._galactic(coords)
        self._store.rows(cells_of(lon, lat, self._order))

    # --- the query ----------------------------------------------------------------

    def _warn_once(self, key, count, text):
        if count and key not in self._warned:
            self._warned.add(key)
            warnings.warn(f"{count} coordinate(s) {text}: their extinction is NaN (this "
                          f"warning is shown once per map object)", CnnextWarning,
                          stacklevel=3)

    def query(self, coords, *, mode="mean", return_sigma=False, return_flags=False,
              pct=None, band="V", seed=None, n_samples=20):
        """
        Extinction at ``coords``: cumulative to their distance, or whole profiles.

        Parameters
        ----------
        coords : `~astropy.coordinates.SkyCoord`
            Any frame (Galactic, ICRS, Galactocentric, Galactic cartesian…), any
            shape. With distances: the extinction to each distance (linear from
            zero below the first node, linear between nodes, constant beyond the
            last). Without: the whole profile at `distances`.
        mode : str
            ``"mean"`` (default): the network's profile. ``"median"`` and
            ``"percentile"``: quantiles of the uncertainty distribution.
            ``"samples"``: ``n_samples`` profiles drawn from it per sightline.
            ``"random_sample"``: one draw per coordinate; ``"random_sample_per_pix"``:
            one draw per sightline cell (shared by its coordinates).
        return_sigma : bool
            Also return the 1-sigma uncertainty (same shape as the profile part of
            the result, without the sample/percentile axis).
        return_flags : bool
            Also return a structured array (shape ``coords.shape``) with the cell's
            ``n_stars``, ``flags`` (`~cnnext.profiles.FLAG_FEW_STARS`,
            `~cnnext.profiles.FLAG_OUTSIDE_MODEL`, `~cnnext.profiles.FLAG_PARTIAL`,
            `~cnnext.profiles.FLAG_NO_DATA`), reliable distance range ``dmin``,
            ``dmax`` (kpc), and how deep the cell was observed, estimated from its
            stars (`cnnext.observation`): ``m10_J``, ``m10_H``, ``m10_Ks`` (S/N-10
            magnitudes) and ``peak_J``, ``peak_H``, ``peak_Ks`` (count turnovers),
            in mag (NaN where unknown).
        pct : float or list of float
            Percentile(s) in [0, 100] for ``mode="percentile"``.
        band : str
            ``"V"`` (A_V, default), ``"J"``, ``"H"``, ``"Ks"`` (A_band) or
            ``"E(B-V)"``, converted with the model's (or map's) extinction law.
        seed : int or `numpy.random.Generator`, optional
            Random state of the sampling modes.
        n_samples : int
            Number of profiles per sightline for ``mode="samples"``.

        Returns
        -------
        values : float or `numpy.ndarray`
            Extinction in mag (``float64``). Shape ``coords.shape`` with distances,
            ``coords.shape + (n_dist,)`` without, then one more axis for
            ``"samples"`` (``n_samples``) or a list of ``pct``. A scalar ``coords``
            with a distance gives a scalar. NaN outside the map's footprint, where
            the cell has too few stars, or (by default) outside the model's
            training region — with a `~cnnext.exceptions.CnnextWarning` the first
            time each happens.
        sigma : `numpy.ndarray`
            Only with ``return_sigma``.
        flags : `numpy.ndarray`
            Only with ``return_flags`` (dtype `FLAGS_DTYPE`).

        Raises
        ------
        TypeError
            ``coords`` is not a `~astropy.coordinates.SkyCoord`.
        ValueError
            Unknown ``mode`` or ``band``, bad ``pct`` or ``n_samples``, negative
            distances.

        Notes
        -----
        The network gives, at each distance node, a mean cumulative extinction
        A(d) and a 1-sigma uncertainty s(d). Draws are ``A(d) + z s(d)`` with one
        standard normal ``z`` per drawn profile (errors fully correlated along the
        sightline, as for a cumulative quantity), clipped at zero and made
        non-decreasing in distance with a running maximum. Because that transform is
        monotonic in ``z``, the ``p``-th percentile is the same transform at
        ``z = Phi^-1(p / 100)``: an exact quantile of the draws. The median is
        therefore the mean profile. With a distance between nodes, quantiles and
        draws are interpolated like the mean; ``sigma`` is interpolated linearly
        (scaled to zero below the first node, like the extinction).
        """
        if not isinstance(coords, SkyCoord):
            raise TypeError(f"coords must be an astropy SkyCoord, got {type(coords).__name__}")
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
        if self._law is None:
            if band not in ("V", "A_V", "AV"):
                raise ValueError(f"band {band!r} needs an extinction law, and this map file "
                                 f"records none; only band='V' is available")
            ratio = 1.0
        else:
            ratio = self._law.ratio(band)
        pcts, scalar_pct = check_pct(pct, mode)
        if mode == "samples" and (isinstance(n_samples, bool) or int(n_samples) != n_samples
                                  or n_samples < 1):
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        rng = np.random.default_rng(seed) if mode in ("samples", "random_sample",
                                                      "random_sample_per_pix") else None

        shape = coords.shape
        lon, lat, dist = self._galactic(coords)
        cells = cells_of(lon, lat, self._order)
        rows, pm = self._store.rows(cells)
        found = rows >= 0
        r = np.where(found, rows, 0)
        row_flags = np.where(found, pm.flags[r] if len(pm) else 0, FLAG_NO_DATA)
        usable = found & ((row_flags & (FLAG_FEW_STARS | FLAG_PARTIAL)) == 0)
        outside = found & ((row_flags & FLAG_OUTSIDE_MODEL) != 0)
        if self._mask_outside:
            usable &= ~outside
        self._warn_once("footprint", int(np.sum(~found)),
                        "lie outside the map's footprint" if not self._online
                        else "have no valid position")
        self._warn_once("few", int(np.sum(found & ((row_flags & FLAG_FEW_STARS) != 0))),
                        "fall in sightline cells with too few stars")
        self._warn_once("partial", int(np.sum(found & ((row_flags & FLAG_PARTIAL) != 0))),
                        "fall in sightline cells only partly covered by the photometry")
        if self._mask_outside:
            self._warn_once("outside", int(np.sum(outside)),
                            "lie outside the model's training region")

        loc = None if dist is None else self._locator.locate(dist)
        values = profile_values(pm, r, loc, mode, pcts, scalar_pct, n_samples, rng,
                                self._nodes.size)
        values = self._mask(values, usable) * ratio
        out = [self._shape(values, shape)]
        if return_sigma:
            sig = pm.sigma if len(pm) else np.zeros((1, self._nodes.size), np.float32)
            s = interpolate(sig, r, loc) if loc is not None else sig[r].astype(float)
            out.append(self._shape(self._mask(s, usable) * ratio, shape))
        if return_flags:
            flags = np.zeros(r.size, FLAGS_DTYPE)
            flags["flags"] = row_flags
            if len(pm):
                flags["n_stars"] = np.where(found, pm.n_stars[r], -1)
                flags["dmin"] = np.where(found, pm.dmin[r], np.nan)
                flags["dmax"] = np.where(found, pm.dmax[r], np.nan)
                for k, name in enumerate(DESCRIPTORS):
                    flags[name] = np.where(found, pm.observation[r, k], np.nan)
            else:
                flags["n_stars"], flags["dmin"], flags["dmax"] = -1, np.nan, np.nan
                for name in DESCRIPTORS:
                    flags[name] = np.nan
            out.append(flags.reshape(shape))
        return out[0] if len(out) == 1 else tuple(out)

    @staticmethod
    def _shape(values, shape):
        out = values.reshape(shape + values.shape[1:])
        return out[()] if out.ndim == 0 else out

    @staticmethod
    def _mask(values, usable):
        if not np.all(usable):
            values = np.array(values, dtype=float, copy=True)
            values[~usable] = np.nan
        return values
