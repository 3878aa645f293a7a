# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Validation of the Galaxy model against 2MASS star counts.

Two comparisons, with a smooth extinction of 0.7 mag/kpc along every sightline:

- `REFERENCE_FIELDS`: 2MASS Point Source Catalogue sources per deg² in nine
  reference fields; the model's stars go through the mock 2MASS observation
  (`observe`) and every star detected in at least one band counts, as in the PSC.
- `DENSITY_ZONES`: the ranges of log10 N(Ks < 14) per deg² that 2MASS shows in
  latitude zones; Ks < 14 is above the completeness limit, so intrinsic Ks plus
  extinction is counted directly.

And two comparisons without extinction: `SOLAR_NEIGHBOURHOOD`, the number
densities of stars by spectral class in volume-limited samples around the Sun,
against the model's stars at the Sun (`local_class_densities`); and
`DWARF_SEQUENCE`, the empirical 2MASS colours of main-sequence stars, against
the isochrones' at the same absolute Ks (`dwarf_sequence_colours`).
"""

import numpy as np
from astropy.table import Table

from ..extinction import ExtinctionLaw
from .galaxy import GalaxyModel
from .isochrones import DWARF_LOG_AGE, DWARF_SEQUENCE, main_sequence_colours
from .observation import observe

__all__ = ["REFERENCE_FIELDS", "DENSITY_ZONES", "SOLAR_NEIGHBOURHOOD",
           "reference_field_counts", "density_zone_counts", "local_class_densities",
           "dwarf_sequence_colours"]

#: 2MASS PSC sources per deg² in 1°-radius reference fields: ((l, b), count).
REFERENCE_FIELDS = (((301.3, 77.9), 951), ((217.6, 59.9), 1402), ((207.8, 40.8), 1971),
                    ((202.3, 28.8), 2993), ((189.0, 12.9), 8637), ((190.8, 2.9), 16146),
                    ((175.1, -10.5), 8700), ((182.1, -21.4), 3667), ((149.5, -37.2), 1976))

#: 2MASS log10 N(Ks < 14) per deg² by zone of abs(b): ((min, max), (low, high)).
DENSITY_ZONES = (((25.0, 90.0), (0.0, 3.2)), ((10.0, 25.0), (3.2, 3.6)),
                 ((5.0, 10.0), (3.6, 4.0)), ((0.0, 5.0), (4.0, 4.5)))

#: Sightlines of the density-zone comparison: the Carina region and its latitudes.
ZONE_SIGHTLINES = ((280.0, 0.0), (280.0, 3.0), (300.0, -2.0), (260.0, 4.0),
                   (280.0, 7.0), (290.0, -8.0), (280.0, 15.0), (280.0, -20.0),
                   (280.0, 40.0), (280.0, 85.0))


#: Number densities (pc⁻³) of stars by class in the solar neighbourhood, with
#: their uncertainties and the effective temperatures (K) bounding each class
#: (dwarfs: main-sequence stars; red giants: evolved stars cooler than K0). From
#: E. Mamajek's compilation of volume-limited samples ("Star densities in the
#: solar neighbourhood", pas.rochester.edu/~emamajek/memo_star_dens.html): A from
#: Hipparcos within 30 pc, F dwarfs within 30 pc, G dwarfs within 16 pc, K and M
#: dwarfs from the RECONS 10 pc census (the M dwarfs within 6.5 pc give 0.086),
#: red giants from Hipparcos. White and brown dwarfs are not in the model.
SOLAR_NEIGHBOURHOOD = (
    ("A", "dwarfs", (7220.0, 9700.0), 4.9e-4, 0.7e-4),
    ("F", "dwarfs", (5930.0, 7220.0), 2.4e-3, 0.3e-3),
    ("G", "dwarfs", (5270.0, 5930.0), 3.3e-3, 0.4e-3),
    ("K", "dwarfs", (3850.0, 5270.0), 1.05e-2, 0.16e-2),
    ("M", "dwarfs", (2300.0, 3850.0), 6.76e-2, 0.40e-2),
    ("K-M", "red giants", (2300.0, 5270.0), 2.7e-4, 0.5e-4),
)


def dwarf_sequence_colours(model=None, *, log_age=DWARF_LOG_AGE):
    """
    Compare the isochrones' main sequence with the empirical one, at the same M_Ks.

    The model's J-H and H-Ks are those of the main-sequence stars of its grid's
    isochrone nearest to solar metallicity and ``log_age``, interpolated to the
    absolute Ks of each type of `DWARF_SEQUENCE`: whether the isochrones' colour
    transformations give dwarfs the colours real ones have. A model made with
    ``dwarf_colours="empirical"`` has them by construction (to the
    interpolation between the table's types).

    Parameters
    ----------
    model : `GalaxyModel`, optional
        Default ``GalaxyModel()`` (its isochrone grid, with its ``dwarf_colours``).
    log_age : float
        log10 of the isochrone's age in years (default 2 Gyr: old enough for
        M dwarfs to be on the main sequence, young enough for F5 dwarfs).

    Returns
    -------
    table : `~astropy.table.Table`
        ``type``, ``M_Ks``, the empirical ``JH`` and ``HKs``, the model's
        ``model_JH`` and ``model_HKs``, and their differences ``d_JH``, ``d_HKs``
        (model minus empirical), one row per type.

    Examples
    --------
    >>> from cnnext.synthetic import dwarf_sequence_colours
    >>> table = dwarf_sequence_colours()
    >>> table["type"].tolist()[:3]
    ['F5V', 'G0V', 'G5V']
    """
    model = GalaxyModel() if model is None else model
    m_ks = np.array([row[1] for row in DWARF_SEQUENCE])
    jh, hk, _ = main_sequence_colours(model.grid, m_ks, log_age=log_age,
                                      columns=model.columns)
    rows = []
    for (name, mks, ref_jh, ref_hk), m_jh, m_hk in zip(DWARF_SEQUENCE, jh, hk):
        m_jh, m_hk = float(m_jh), float(m_hk)
        rows.append((name, mks, ref_jh, ref_hk, m_jh, m_hk, m_jh - ref_jh, m_hk - ref_hk))
    return Table(rows=rows, names=("type", "M_Ks", "JH", "HKs", "model_JH", "model_HKs",
                                   "d_JH", "d_HKs"))


def local_class_densities(model=None):
    """
    Compare the model's stars at the Sun with the solar-neighbourhood census.

    A check of the model's mix of stars that does not depend on extinction: how
    many F, G, K and M dwarfs (and red giants) it puts in each pc³ around the
    Sun, against `SOLAR_NEIGHBOURHOOD`. The thin and thick discs and the halo
    are summed.

    Parameters
    ----------
    model : `GalaxyModel`, optional
        Default ``GalaxyModel()``.

    Returns
    -------
    table : `~astropy.table.Table`
        ``class``, ``kind``, ``model`` and ``census`` (stars pc⁻³), ``census_err``,
        ``ratio`` (model / census) and ``sigma`` (the difference in census
        uncertainties), one row per class.

    Examples
    --------
    >>> from cnnext.synthetic import local_class_densities
    >>> table = local_class_densities()
    >>> table["class"].tolist()
    ['A', 'F', 'G', 'K', 'M', 'K-M']
    """
    model = GalaxyModel() if model is None else model
    local = model.local_stars()
    teff, phase = np.asarray(local["teff"]), np.asarray(local["phase"])
    density = np.asarray(local["density"])
    kinds = {"dwarfs": phase <= 1, "red giants": (phase >= 3) & (phase <= 8)}
    rows = []
    for name, kind, (t_lo, t_hi), census, err in SOLAR_NEIGHBOURHOOD:
        sel = kinds[kind] & (teff >= t_lo) & (teff < t_hi)
        n = float(density[sel].sum())
        rows.append((name, kind, n, census, err, n / census, (n - census) / err))
    return Table(rows=rows, names=("class", "kind", "model", "census", "census_err",
                                   "ratio", "sigma"))


def _area(b):
    # enough stars for a ~2 % count, few enough to stay fast
    return 1.0 if abs(b) < 20 else 8.0


def reference_field_counts(model=None, *, av_per_kpc=0.7, seed=1, law=None):
    """
    Compare model counts with the 2MASS PSC counts of `REFERENCE_FIELDS`.

    Parameters
    ----------
    model : `GalaxyModel`, optional
        Default ``GalaxyModel()``.
    av_per_kpc : float
        Smooth extinction along every sightline (mag/kpc).
    seed : int
        Random seed of the draws.
    law : `~cnnext.extinction.ExtinctionLaw`, optional
        Default G23.

    Returns
    -------
    table : `~astropy.table.Table`
        ``l``, ``b``, ``twomass`` (PSC deg⁻²), ``model`` (deg⁻²), ``ratio``.
    """
    model = GalaxyModel() if model is None else model
    law = ExtinctionLaw("G23") if law is None else law
    rows = []
    for k, ((l, b), ref) in enumerate(REFERENCE_FIELDS):
        area = _area(b)
        stars = model.sample(l, b, area, faint_limit=17.5, band="J", seed=seed + k)
        obs = observe(stars, av_per_kpc * np.asarray(stars["distance"]), law=law,
                      seed=seed + 1000 + k)
        n = len(obs) / area
        rows.append((l, b, ref, n, n / ref))
    return Table(rows=rows, names=("l", "b", "twomass", "model", "ratio"))


def density_zone_counts(model=None, *, av_per_kpc=0.7, seed=1, law=None,
                        sightlines=ZONE_SIGHTLINES):
    """
    Compare log10 N(Ks < 14) per deg² of the model with the 2MASS `DENSITY_ZONES`.

    Parameters
    ----------
    model, av_per_kpc, seed, law
        As in `reference_field_counts`.
    sightlines : sequence of (l, b)
        Where to count (deg).

    Returns
    -------
    table : `~astropy.table.Table`
        ``l``, ``b``, ``log_n`` (model), ``zone_low``, ``zone_high``, ``inside``.
    """
    model = GalaxyModel() if model is None else model
    law = ExtinctionLaw("G23") if law is None else law
    rows = []
    for k, (l, b) in enumerate(sightlines):
        area = _area(b)
        stars = model.sample(l, b, area, faint_limit=14.0, seed=seed + k)
        ks = np.asarray(stars["Ks"]) + law.coefficients["Ks"] * av_per_kpc * np.asarray(
            stars["distance"])
        log_n = np.log10(max(np.count_nonzero(ks < 14.0), 1) / area)
        (lo, hi), = [z for (bmin, bmax), z in DENSITY_ZONES if bmin <= abs(b) < bmax
                     or (bmax == 90.0 and abs(b) == 90.0)]
        rows.append((l, b, log_n, lo, hi, lo <= log_n <= hi))
    return Table(rows=rows, names=("l", "b", "log_n", "zone_low", "zone_high", "inside"))
