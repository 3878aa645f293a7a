# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Unresolved galaxies in the 2MASS Point Source Catalog.

Off the Galactic plane, a noticeable share of the faint 2MASS "stars" are
galaxies too small to be resolved at 2MASS's 2" resolution: red sources
(J - Ks about 1-1.7) that a Galaxy model of stars alone does not have, and that
read as reddened stars to a network trained without them. `unresolved_galaxies`
adds them to a mock cell, behind all of the Milky Way's dust.

Counts: the published K-band galaxy counts have a Euclidean slope
d log N / dK ≈ 0.6 at bright magnitudes, flattening to ≈ 0.45 beyond K ≈ 15.5
(Gardner et al. 1993; Huang et al. 1997; Väisänen et al. 2000), with about
125 galaxies deg⁻² mag⁻¹ at K = 14 (Glazebrook et al. 1994, which 2MASS's own
counts follow to Ks = 14, Jarrett 2000). Galaxies brighter than Ks ≈ 13 are
resolved (they are in the Extended Source Catalog, not the PSC); the unresolved
fraction rises linearly to 1 at Ks = 14.5. Colours: low-redshift galaxies have
J - Ks ≈ 1.0 and H - Ks ≈ 0.3, reddening with redshift (K-corrections), hence
with faintness; the trends here (``_colours``) are approximations at the 0.1 mag
level and documented as such.
"""

import numpy as np
from astropy.table import Table

__all__ = ["unresolved_galaxies", "galaxy_counts", "GALAXY_DISTANCE_KPC"]

#: Distance given to galaxies in mock catalogues (kpc): beyond every profile's end,
#: so that they see the whole column of Milky Way dust.
GALAXY_DISTANCE_KPC = 1.0e6

_K_REF, _LOG_N_REF = 14.0, np.log10(125.0)
_SLOPE_BRIGHT, _SLOPE_FAINT, _K_BREAK = 0.6, 0.45, 15.5
_RESOLVED_BELOW, _UNRESOLVED_FROM = 13.0, 14.5


def galaxy_counts(ks):
    """
    Differential K-band galaxy counts (deg⁻² mag⁻¹) at Ks (mag), all galaxies.

    Examples
    --------
    >>> from cnnext.synthetic.galaxies import galaxy_counts
    >>> round(float(galaxy_counts(14.0)))
    125
    """
    ks = np.asarray(ks, dtype=float)
    log_n = np.where(ks <= _K_BREAK, _LOG_N_REF + _SLOPE_BRIGHT * (ks - _K_REF),
                     _LOG_N_REF + _SLOPE_BRIGHT * (_K_BREAK - _K_REF)
                     + _SLOPE_FAINT * (ks - _K_BREAK))
    return 10.0 ** log_n


def _unresolved_fraction(ks):
    return np.clip((ks - _RESOLVED_BELOW) / (_UNRESOLVED_FROM - _RESOLVED_BELOW), 0.0, 1.0)


def _colours(ks, rng):
    """Intrinsic (observed-frame) J - Ks and H - Ks of galaxies of magnitude Ks."""
    fainter = np.clip(ks - 13.0, 0.0, 4.0)
    j_ks = 1.0 + 0.15 * fainter + rng.normal(0.0, 0.15, ks.shape)
    h_ks = 0.3 + 0.06 * fainter + rng.normal(0.0, 0.08, ks.shape)
    return j_ks, h_ks


def unresolved_galaxies(l, b, solid_angle, *, faint_limit=17.0, seed=None):
    """
    Draw the unresolved galaxies of a field, as point sources in J, H and Ks.

    Parameters
    ----------
    l, b : float
        Field centre (deg, Galactic); recorded in the table.
    solid_angle : float
        Field area (deg²).
    faint_limit : float
        Faintest Ks drawn (mag, before extinction).
    seed : int, `numpy.random.Generator` or None

    Returns
    -------
    galaxies : `~astropy.table.Table`
        ``l``, ``b``, ``distance`` (`GALAXY_DISTANCE_KPC`), ``J``, ``H``, ``Ks``
        (apparent, without Milky Way extinction) and ``population`` = -1.

    Examples
    --------
    >>> from cnnext.synthetic.galaxies import unresolved_galaxies
    >>> g = unresolved_galaxies(158.0, -20.0, 1.0, faint_limit=15.5, seed=1)
    >>> 300 < len(g) < 700, bool((g["J"] - g["Ks"]).mean() > 1.0)
    (True, True)
    """
    rng = np.random.default_rng(seed)
    n_grid = int(np.ceil((float(faint_limit) - _RESOLVED_BELOW) / 0.01)) + 1
    grid = np.linspace(_RESOLVED_BELOW, float(faint_limit), max(n_grid, 0))
    if grid.size < 2:
        ks = np.zeros(0)
    else:
        density = galaxy_counts(grid) * _unresolved_fraction(grid) * float(solid_angle)
        cum = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1])
                                               * np.diff(grid))])
        n = rng.poisson(cum[-1])
        ks = np.interp(rng.uniform(0.0, cum[-1], n), cum, grid)
    j_ks, h_ks = _colours(ks, rng)
    out = Table()
    out["l"] = np.full(ks.size, float(l))
    out["b"] = np.full(ks.size, float(b))
    out["distance"] = np.full(ks.size, GALAXY_DISTANCE_KPC)
    out["J"] = ks + j_ks
    out["H"] = ks + h_ks
    out["Ks"] = ks
    out["population"] = np.full(ks.size, -1, dtype=np.int16)
    return out
