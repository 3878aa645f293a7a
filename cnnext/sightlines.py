# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
From stars to extinction profiles: the one pipeline shared by every consumer.

`predict_cells` turns a star table (stars tagged with their HEALPix sightline cell)
into a `~cnnext.profiles.ProfileMap`: CMDs made with the model's own
`~cnnext.cmds.CMDSpec`, network inference in batches, and the per-cell quality
information (star count, flags, reliable distance range) and provenance that maps
and query results carry. `compute_cells` adds the photometry query in front.
Both `~cnnext.CNNExtinctionMap` (on-the-fly mode) and `~cnnext.build_map` call
these functions, so a sightline gets the same profile whichever way it is computed.

Definitions used here (and recorded in the docs):

- **Few stars.** A cell with fewer counted stars than the model's
  ``metadata.min_stars`` gets a NaN profile, NaN sigma and `FLAG_FEW_STARS`; the
  network is not even run on it.
- **Partial coverage.** When the stars have positions (``l``, ``b``), each cell
  is split into its ``4**k`` sub-cells ``k`` HEALPix orders down, for every
  ``k = 2, 3`` (`SUBCELL_DEPTHS`) at which the cell's ``n`` stars put at least
  `MIN_PER_SUBCELL` in a sub-cell on average. A cell with more empty sub-cells
  than its star count explains at any of these depths (expected
  ``E = 4**k exp(-n / 4**k)`` for stars spread evenly; flagged above
  ``E + 3 sqrt(E) + 1``) is only partly covered by the photometry — typically
  at the edge of a local catalogue's footprint — and gets a NaN profile and
  `FLAG_PARTIAL`: its CMD would under-count stars and read as the wrong
  extinction. The finer depth finds the slivers a cone's edge cuts off a cell
  (down to about a tenth of it with 800 stars); a dark core hiding every star
  of one 3.4' sub-cell (at order 7) is not enough to flag a cell, a larger one
  can be (a NaN rather than a profile read from a cell that looks half empty).
- **Observation.** Each cell's depth descriptors (`cnnext.observation`) are
  estimated from all its stars with a measured magnitude, pooling the parent
  cell when it has few; models that read them get them beside the CMD, and
  every profile carries them (``ProfileMap.observation``).
- **Outside the model's region.** When the model metadata holds training-region
  bounds ``{"l": [lo, hi], "b": [lo, hi]}`` in degrees (see `training_region`;
  ``lo > hi`` in ``l`` means the range wraps through 0), a cell whose centre lies
  outside them gets `FLAG_OUTSIDE_MODEL`.
  The prediction is kept in the map; the query class masks it (see
  `~cnnext.CNNExtinctionMap`). Without a region no cell is flagged.
- **Reliable distance range.** ``dmin`` is the first distance node (the network
  has no information closer). ``dmax`` is the distance out to which red-clump
  giants (M_Ks = `RED_CLUMP_MKS`), the brightest common tracer of distant dust
  in 2MASS, are still brighter than the faint Ks limit behind the predicted
  extinction: the largest node ``d`` with
  ``RED_CLUMP_MKS + 5 log10(d / 10 pc) + A_Ks(d) <= Ks_faint``. Beyond it the CMD
  holds little information about the profile. ``Ks_faint`` is the cell's own
  Ks count turnover, estimated from its stars (``peak_Ks`` of the observation
  descriptors), where it is known; otherwise the model's ``mag_limits`` (see
  `faint_ks_limit`); never fainter than the CMD's faint Ks edge. Both are NaN for
  NaN profiles.
"""

import logging

import numpy as np

from .cmds import build_cmds
from .healpix import cell_centres, check_order, lonlat_to_cells
from .observation import DESCRIPTORS, estimate_cells
from .profiles import FLAG_FEW_STARS, FLAG_OUTSIDE_MODEL, FLAG_PARTIAL, ProfileMap
from .quality import as_float64

__all__ = ["predict_cells", "compute_cells", "profile_meta", "training_region",
           "in_region", "faint_ks_limit", "reliable_range", "RED_CLUMP_MKS",
           "DEFAULT_KS_FAINT"]

log = logging.getLogger(__name__)

#: Absolute Ks magnitude of red-clump giants (Alves 2000: -1.60).
RED_CLUMP_MKS = -1.6
#: Faint Ks limit used for ``dmax`` when the model records none: the 2MASS
#: 10-sigma depth (14.3) plus 0.8 mag, the typical 50% completeness level.
DEFAULT_KS_FAINT = 15.1


def training_region(model):
    """
    Return the training region ``{"l": (lo, hi), "b": (lo, hi)}`` of a model, or `None`.

    Read from ``metadata.training["region"]["bounds"]``, as `cnnext.training` writes
    it. Degrees; longitudes are returned in [0, 360) and ``lo > hi`` means the range
    wraps through l = 0. `None` when the model records no bounds (then no cell is
    flagged).

    Examples
    --------
    >>> from cnnext.model import CNNModel
    >>> from cnnext.sightlines import training_region
    >>> training_region(CNNModel())  # the shipped model's
    {'l': (257.0, 303.0), 'b': (-5.0, 5.0)}
    """
    training = getattr(model.metadata, "training", None)
    region = training.get("region") if isinstance(training, dict) else None
    bounds = region.get("bounds") if isinstance(region, dict) else None
    if not (isinstance(bounds, dict) and "l" in bounds and "b" in bounds):
        return None
    l_lo, l_hi = (float(v) for v in bounds["l"])
    b_lo, b_hi = (float(v) for v in bounds["b"])
    if l_hi - l_lo >= 360.0:
        return {"l": (0.0, 360.0), "b": (b_lo, b_hi)}
    return {"l": (l_lo % 360.0, l_hi % 360.0), "b": (b_lo, b_hi)}


def in_region(l, b, region):
    """
    Return which Galactic positions (deg) lie inside ``region`` (see `training_region`).

    Examples
    --------
    >>> from cnnext.sightlines import in_region
    >>> in_region([280.0, 10.0, 355.0], [0.0, 0.0, 2.0],
    ...           {"l": (257.0, 303.0), "b": (-5.0, 5.0)}).tolist()
    [True, False, False]
    >>> in_region([355.0, 5.0, 20.0], [0.0, 0.0, 0.0],
    ...           {"l": (350.0, 10.0), "b": (-5.0, 5.0)}).tolist()
    [True, True, False]
    """
    l = np.mod(np.asarray(l, dtype=float), 360.0)
    b = np.asarray(b, dtype=float)
    if region is None:
        return np.ones(np.broadcast(l, b).shape, bool)
    l_lo, l_hi = region["l"]
    b_lo, b_hi = region["b"]
    if l_hi - l_lo >= 360.0:
        in_l = np.ones(l.shape, bool)
    elif l_lo <= l_hi:
        in_l = (l >= l_lo) & (l <= l_hi)
    else:
        in_l = (l >= l_lo) | (l <= l_hi)
    return in_l & (b >= b_lo) & (b <= b_hi)


def faint_ks_limit(model):
    """
    Return the faint Ks limit (mag) used for the reliable distance range.

    Read from the model's ``mag_limits``: ``mag_limits["Ks"]`` when it is a number,
    else ``mag_limits["Ks"]["m50"]`` or ``["faint"]``, else ``mag_limits["faint"]["Ks"]``;
    otherwise `DEFAULT_KS_FAINT`. Never fainter than the CMD's own faint Ks edge.

    Examples
    --------
    >>> from cnnext.model import CNNModel
    >>> from cnnext.sightlines import faint_ks_limit
    >>> ks = faint_ks_limit(CNNModel())  # the shipped model's: about 15 mag
    >>> 14.0 < ks < 16.5
    True
    """
    limits = getattr(model.metadata, "mag_limits", None) or {}
    value = None
    ks = limits.get("Ks") if isinstance(limits, dict) else None
    if isinstance(ks, (int, float)):
        value = float(ks)
    elif isinstance(ks, dict):
        for key in ("m50", "faint", "limit"):
            if isinstance(ks.get(key), (int, float)):
                value = float(ks[key])
                break
    if value is None and isinstance(limits.get("faint"), dict) and isinstance(
            limits["faint"].get("Ks"), (int, float)):
        value = float(limits["faint"]["Ks"])
    if value is None:
        value = DEFAULT_KS_FAINT
    edges = [c.mag_range[1] for c in model.spec.channels if c.mag == "Ks"]
    return min([value, *edges])


def reliable_range(av, distances, *, a_ks_per_av, ks_faint, mks=RED_CLUMP_MKS):
    """
    Return ``(dmin, dmax)`` in kpc for cumulative A_V profiles (see module docs).

    Parameters
    ----------
    av : array
        Cumulative A_V ``(n, n_dist)`` in mag; NaN rows give NaN ranges.
    distances : array
        Distance nodes in kpc.
    a_ks_per_av : float
        A_Ks / A_V of the extinction law.
    ks_faint : float
        Faint Ks limit (mag).
    mks : float
        Absolute Ks magnitude of the tracer (red clump).

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext.sightlines import reliable_range
    >>> d = np.array([1.0, 2.0, 4.0, 8.0])
    >>> dmin, dmax = reliable_range(np.array([[0.0, 1.0, 20.0, 40.0]]), d,
    ...                             a_ks_per_av=0.1, ks_faint=15.0)
    >>> float(dmin[0]), float(dmax[0])
    (1.0, 4.0)
    >>> float(reliable_range(np.array([[0.0, 1.0, 60.0, 90.0]]), d,
    ...                      a_ks_per_av=0.1, ks_faint=15.0)[1][0])
    2.0
    """
    av = np.asarray(av, dtype=float)
    distances = np.asarray(distances, dtype=float)
    ks_rc = mks + 5.0 * np.log10(distances * 100.0) + a_ks_per_av * av
    with np.errstate(invalid="ignore"):
        visible = ks_rc <= ks_faint
    # last node of the leading run of visible nodes: a red clump hidden at d stays
    # hidden farther out (A and distance modulus only grow)
    hidden_before = np.cumsum(~visible, axis=1) > 0
    n_visible = np.sum(~hidden_before, axis=1)
    ok = np.all(np.isfinite(av), axis=1)
    dmax = np.where(n_visible > 0, distances[np.maximum(n_visible - 1, 0)], distances[0])
    dmin = np.full(av.shape[0], distances[0])
    return np.where(ok, dmin, np.nan), np.where(ok, dmax, np.nan)


def profile_meta(model, *, source_key=None):
    """Return the provenance dict stored with profiles computed by ``model``."""
    from . import __version__

    meta = {"model_sha256": model.sha256,
            "model_file": getattr(getattr(model, "path", None), "name", None),
            "extinction_law": model.law.to_dict(),
            "cmd_spec": model.spec.to_dict(),
            "min_stars": int(model.metadata.min_stars),
            "cnnext_version": __version__}
    if source_key is not None:
        meta["source"] = str(source_key)
    return meta


def _star_columns(stars):
    """Plain numpy columns of a star table (cheap to slice per batch)."""
    names = getattr(stars, "colnames", None) or list(stars.keys())
    return {name: np.asarray(stars[name]) if not np.ma.isMaskedArray(stars[name])
            else stars[name] for name in names
            if name in ("J", "H", "Ks", "e_J", "e_H", "e_Ks", "ph_qual", "cc_flg")}


def predict_cells(stars, cells, model, *, source_key=None, batch_size=None,
                  progress_bar=False):
    """
    Compute the extinction profiles of HEALPix sightline cells from their stars.

    Parameters
    ----------
    stars : `~astropy.table.Table` or mapping of arrays
        Star table (cnnext schema) with an int64 column ``cell``: the nested
        Galactic HEALPix cell of each star at ``model.order``. Stars in cells not
        listed in ``cells`` are ignored.
    cells : array of int
        The cells to compute (duplicates are ignored); a cell without stars gets
        a NaN profile flagged `~cnnext.profiles.FLAG_FEW_STARS`.
    model : `~cnnext.model.CNNModel`
        The network; its CMD spec, HEALPix order, distances, ``min_stars``,
        training region and extinction law are used.
    source_key : str, optional
        Key of the photometry source, recorded in ``meta["source"]``.
    batch_size : int, optional
        Cells per batch (CMDs held in memory and sent to the network at once);
        defaults to ``cnnext.conf.batch_size``.
    progress_bar : bool
        Show a tqdm progress bar over batches.

    Returns
    -------
    `~cnnext.profiles.ProfileMap`
        One row per cell (sorted): A_V profile and sigma (NaN for few stars),
        ``n_stars``, ``flags``, ``dmin``/``dmax`` and ``meta`` (``model_sha256``,
        ``extinction_law``, ``cmd_spec``, ``min_stars``, ``source``,
        ``cnnext_version``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> from cnnext.model import CNNModel
    >>> from cnnext.testing.models import write_tiny_model
    >>> from cnnext.sightlines import predict_cells
    >>> model = CNNModel(write_tiny_model(pathlib.Path(tempfile.mkdtemp()) / "m.onnx"),
    ...                  providers="cpu")
    >>> rng = np.random.default_rng(1)
    >>> n = 40
    >>> stars = {"J": rng.uniform(10, 15, n), "e_J": np.full(n, 0.03),
    ...          "cell": np.repeat(np.array([7, 9]), [30, 10])}
    >>> stars["H"], stars["e_H"] = stars["J"] - 0.6, np.full(n, 0.03)
    >>> stars["Ks"], stars["e_Ks"] = stars["J"] - 0.8, np.full(n, 0.03)
    >>> pm = predict_cells(stars, [7, 9, 11], model)
    >>> pm.cells.tolist(), pm.n_stars.tolist(), pm.flags.tolist()
    ([7, 9, 11], [30, 10, 0], [0, 0, 1])
    >>> bool(np.isnan(pm.av[2]).all()), bool(np.all(np.diff(pm.av[0]) >= 0))
    (True, True)
    """
    from .config import conf

    order = check_order(model.order)
    cells = np.unique(np.asarray(cells, dtype=np.int64).reshape(-1))
    n_cells = cells.size
    n_dist = len(model.distances)
    batch_size = int(batch_size or conf.batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    try:
        star_cells = np.asarray(stars["cell"], dtype=np.int64)
    except (KeyError, ValueError):
        raise KeyError("stars needs an int64 column 'cell' (the HEALPix cell of each star "
                       f"at order {order})") from None

    # Row of each star in the output (-1: not asked for), then stars sorted by row
    # so that a batch of cells is one contiguous slice of the star arrays.
    pos = np.searchsorted(cells, star_cells)
    pos_c = np.clip(pos, 0, max(n_cells - 1, 0))
    rows = np.where((n_cells > 0) & (cells[pos_c] == star_cells), pos_c, -1) if \
        n_cells else np.full(star_cells.shape, -1)
    observation, _ = estimate_cells(stars, cells, order)
    partial = partly_covered(stars, cells, order)
    columns = _star_columns(stars)
    if not (rows.size and rows[0] >= 0 and np.all(rows[1:] >= rows[:-1])):
        # sources usually return stars sorted by cell: then no copy is needed
        keep = np.flatnonzero(rows >= 0)
        perm = keep[np.argsort(rows[keep], kind="stable")]
        rows = rows[perm]
        columns = {k: v[perm] for k, v in columns.items()}

    av = np.full((n_cells, n_dist), np.nan)
    sigma = np.full((n_cells, n_dist), np.nan)
    n_stars = np.zeros(n_cells, np.int64)
    starts = range(0, n_cells, batch_size)
    if progress_bar:
        from tqdm.auto import tqdm
        starts = tqdm(starts, desc="sightlines", unit="batch")
    min_stars = int(model.metadata.min_stars)
    for start in starts:
        stop = min(start + batch_size, n_cells)
        lo, hi = np.searchsorted(rows, [start, stop])
        batch = {k: v[lo:hi] for k, v in columns.items()}
        cmds, counts = build_cmds(batch, rows[lo:hi] - start, stop - start, model.spec)
        n_stars[start:stop] = counts
        enough = np.flatnonzero((counts >= min_stars) & ~partial[start:stop])
        if enough.size:
            a, s = model.predict(cmds[enough], observation[start + enough],
                                 batch_size=batch_size)
            av[start + enough] = a
            sigma[start + enough] = s

    flags = np.where(n_stars < min_stars, FLAG_FEW_STARS, 0).astype(np.int32)
    flags |= np.where(partial, FLAG_PARTIAL, 0).astype(np.int32)
    region = training_region(model)
    if region is not None and n_cells:
        l, b = cell_centres(cells, order)
        flags |= np.where(in_region(l, b, region), 0, FLAG_OUTSIDE_MODEL).astype(np.int32)
    # each cell's own depth where it was measured, the model's otherwise
    edge = min([np.inf, *(c.mag_range[1] for c in model.spec.channels if c.mag == "Ks")])
    peak = observation[:, DESCRIPTORS.index("peak_Ks")]
    ks_faint = np.where(np.isfinite(peak), np.minimum(peak, edge), faint_ks_limit(model))
    dmin, dmax = reliable_range(av, model.distances, a_ks_per_av=model.law.ratio("Ks"),
                                ks_faint=ks_faint[:, None])
    log.debug("predicted %d cells (%d with too few stars)", n_cells,
              int(np.sum(n_stars < min_stars)))
    return ProfileMap(cells=cells, order=order, distances=model.distances, av=av,
                      sigma=sigma, n_stars=n_stars, flags=flags, dmin=dmin, dmax=dmax,
                      meta=profile_meta(model, source_key=source_key),
                      observation=observation)


#: HEALPix orders below a cell's at which `partly_covered` looks for empty sub-cells
SUBCELL_DEPTHS = (2, 3)
#: Mean stars per sub-cell a depth needs before `partly_covered` tests a cell there
MIN_PER_SUBCELL = 6.0


def partly_covered(stars, cells, order):
    """
    Return which ``cells`` the stars cover only in part (see the module docs).

    Parameters
    ----------
    stars : `~astropy.table.Table` or mapping of arrays
        Star table with ``l``, ``b`` (deg) and the int64 ``cell`` of each star at
        ``order``; without positions no cell is flagged.
    cells : array of int
        Sorted unique cells to test.
    order : int
        Their HEALPix order.

    Returns
    -------
    partial : `numpy.ndarray` of bool

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext.healpix import cell_centres
    >>> from cnnext.sightlines import partly_covered
    >>> fine = np.arange(4**4)               # every order-11 sub-cell of cell 0
    >>> l, b = cell_centres(fine, 11)
    >>> stars = {"l": l, "b": b, "cell": fine >> 8}
    >>> partly_covered(stars, np.array([0]), 7).tolist()
    [False]
    >>> half = fine < 8 * 4**2               # in order-9 sub-cells 0-7 of 16 only
    >>> partly_covered({k: v[half] for k, v in stars.items()}, np.array([0]), 7).tolist()
    [True]
    """
    cells = np.asarray(cells, dtype=np.int64)
    star_cells = np.asarray(stars["cell"], dtype=np.int64)
    names = getattr(stars, "colnames", None) or list(stars.keys())
    partial = np.zeros(cells.size, bool)
    if "l" not in names or "b" not in names or not cells.size:
        return partial
    l, b = as_float64(stars["l"]), as_float64(stars["b"])
    row = np.searchsorted(cells, star_cells)
    row_c = np.clip(row, 0, cells.size - 1)
    ok = (cells[row_c] == star_cells) & np.isfinite(l) & np.isfinite(b)
    if not ok.any():
        return partial
    idx = np.flatnonzero(ok)
    rows = row_c[idx]
    n = np.bincount(rows, minlength=cells.size)
    for k in SUBCELL_DEPTHS:
        n_sub = 4**k
        tested = n >= MIN_PER_SUBCELL * n_sub
        if k > SUBCELL_DEPTHS[0] and not tested.any():
            break
        fine = np.asarray(lonlat_to_cells(l[idx], b[idx], order + k), dtype=np.int64)
        # positions that disagree with the cell a source gave a star are not used
        agree = (fine >> (2 * k)) == star_cells[idx]
        occupied = np.zeros((cells.size, n_sub), bool)
        occupied[rows[agree], fine[agree] & (n_sub - 1)] = True
        m = np.bincount(rows[agree], minlength=cells.size)
        expected_empty = n_sub * np.exp(-m / n_sub)
        empty = n_sub - occupied.sum(axis=1)
        excess = empty > expected_empty + 3.0 * np.sqrt(expected_empty) + 1.0
        # the coarsest depth tests every cell with stars (as few as it has)
        partial |= excess & (m > 0) & (tested | (k == SUBCELL_DEPTHS[0]))
    return partial


def compute_cells(cells, *, source, model, batch_size=None, progress_bar=False):
    """
    Fetch the stars of HEALPix cells from a photometry source and predict their profiles.

    ``source.query_cells(cells, model.order)`` followed by `predict_cells`.

    Parameters
    ----------
    cells : array of int
        Nested Galactic HEALPix cells at ``model.order``.
    source : `~cnnext.photometry.base.PhotometrySource`
        Where the stars come from; its ``key`` is recorded in the map's provenance.
    model : `~cnnext.model.CNNModel`
        The network.
    batch_size : int, optional
        Cells per inference batch (default ``cnnext.conf.batch_size``).
    progress_bar : bool
        Show progress bars (photometry and inference).

    Returns
    -------
    `~cnnext.profiles.ProfileMap`

    Examples
    --------
    Two cells of a mock 2MASS sky, with the shipped network:

    >>> from cnnext.healpix import lonlat_to_cells
    >>> from cnnext.model import CNNModel
    >>> from cnnext.sightlines import compute_cells
    >>> from cnnext.synthetic import MockSky
    >>> cells = lonlat_to_cells([286.0, 287.0], [0.0, 0.0], 7)
    >>> pm = compute_cells(cells, source=MockSky(seed=2022), model=CNNModel())
    >>> pm
    <ProfileMap 2 cells at HEALPix order 7, 100 distances 0.1-10 kpc>
    >>> bool((pm.n_stars > 1000).all()), pm.flags.tolist()  # thousands of stars, no flag
    (True, [0, 0])
    """
    cells = np.unique(np.asarray(cells, dtype=np.int64).reshape(-1))
    stars = source.query_cells(cells, model.order, progress_bar=progress_bar)
    return predict_cells(stars, cells, model, source_key=getattr(source, "key", None),
                         batch_size=batch_size, progress_bar=progress_bar)
