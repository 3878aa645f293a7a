# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Read catalogues of the Besançon Galaxy model web service.

The service returns an ASCII catalogue: a banner, the field line
``(l = 280.0; b = 0.0)  Distance 0.0 a 50.0 kpc;  Solid angle 0.010 square degree``,
parameter blocks (among them ``Absorption at s.n. : 0.70 mag./kpc   0 clouds``), a
header line ``Dist Mv CL Typ LTef logg Age Mass <4 colours> <V or K> [kinematics]
[Fe/H] l b Av Mbol``, the star rows, the header again and summary lines ending
with ``TOTAL NUMBER OF STARS : N``. `read_besancon` turns it into the intrinsic-star
table of `GalaxyModel.sample`, so that users can train on real Besançon catalogues.
"""

import re
import warnings
from pathlib import Path

import numpy as np
from astropy.table import Table

from ..exceptions import CnnextWarning
from ..extinction import ExtinctionLaw
from .galaxy import default_populations, distance_modulus

__all__ = ["read_besancon", "johnson_to_2mass", "BESANCON_EXTINCTION", "CARPENTER_BB"]

#: Extinction ratios A_band/A_V used to remove the file's ``Av`` from its Johnson
#: magnitudes (Mathis 1990, R_V = 3.1, as in the Besançon model).
BESANCON_EXTINCTION = ExtinctionLaw("Mathis1990", Rv=3.1,
                                    coefficients={"J": 0.282, "H": 0.175, "Ks": 0.112})

#: Carpenter (2001; All-Sky Release update of the 2MASS Explanatory Supplement,
#: §VI.4b) transformation from the Bessell & Brett (1988) system to 2MASS:
#: Ks = K + k0 + k1 (J-K); J-Ks = jk1 (J-K) + jk0; H-Ks = hk1 (H-K) + hk0.
CARPENTER_BB = {"k0": -0.039, "k1": 0.001, "jk1": 0.983, "jk0": -0.018,
                "hk1": 0.971, "hk0": 0.034}

_FIRST = ("Dist", "Mv", "CL", "Typ", "LTef", "logg", "Age", "Mass")
_LAST = ("[Fe/H]", "l", "b", "Av", "Mbol")
_KINEMATICS = ("mux", "muy", "Vr", "UU", "VV", "WW")
_FIELD = re.compile(r"\(\s*l\s*=\s*(?P<l>[-+\d.eE]+)\s*;\s*b\s*=\s*(?P<b>[-+\d.eE]+)\s*\)"
                    r"\s*Distance\s+(?P<dmin>[-+\d.eE]+)\s+a\s+(?P<dmax>[-+\d.eE]+)\s*kpc\s*;"
                    r"\s*Solid angle\s+(?P<omega>[-+\d.eE]+)\s+square degree", re.IGNORECASE)
_ABSORPTION = re.compile(r"Absorption at s\.n\.\s*:\s*(?P<av>[-+\d.eE]+)\s*mag\.?/kpc"
                         r"(?:\s+(?P<clouds>\d+)\s+clouds?)?", re.IGNORECASE)
_TOTAL = re.compile(r"TOTAL NUMBER OF STARS\s*:\s*(?P<n>\d+)", re.IGNORECASE)


def johnson_to_2mass(J, H, K, coefficients=None):
    """
    Convert Johnson-type (Bessell & Brett 1988) J, H, K to 2MASS J, H, Ks.

    Uses Carpenter's (2001, updated for the 2MASS All-Sky Release) relations::

        Ks     = K + k0 + k1 (J - K)          k0 = -0.039, k1 = 0.001
        J - Ks = jk1 (J - K) + jk0            jk1 = 0.983, jk0 = -0.018
        H - Ks = hk1 (H - K) + hk0            hk1 = 0.971, hk0 = 0.034

    Parameters
    ----------
    J, H, K : array-like
        Magnitudes in the Bessell & Brett system.
    coefficients : dict, optional
        Replace `CARPENTER_BB`.

    Returns
    -------
    J, H, Ks : `numpy.ndarray`
        2MASS magnitudes.

    Examples
    --------
    >>> from cnnext.synthetic import johnson_to_2mass
    >>> [round(float(m), 3) for m in johnson_to_2mass(11.0, 10.4, 10.2)]
    [10.93, 10.39, 10.162]
    """
    c = dict(CARPENTER_BB)
    c.update(coefficients or {})
    J, H, K = (np.asarray(x, dtype=float) for x in (J, H, K))
    ks = K + c["k0"] + c["k1"] * (J - K)
    return ks + c["jk1"] * (J - K) + c["jk0"], ks + c["hk1"] * (H - K) + c["hk0"], ks


def _bad(path, message):
    return ValueError(f"{path}: {message}")


def _solve_magnitudes(path, columns, data, ref):
    """Rebuild J, H, K from the reference magnitude and the colour columns."""
    mags = {ref: data[columns.index(ref)]}
    colours = []
    for name in columns:
        if "-" in name and name not in ("[Fe/H]",):
            blue, red = name.split("-", 1)
            colours.append((blue, red, data[columns.index(name)]))
    changed = True
    while changed:
        changed = False
        for blue, red, value in colours:
            if blue in mags and red not in mags:
                mags[red] = mags[blue] - value
                changed = True
            elif red in mags and blue not in mags:
                mags[blue] = mags[red] + value
                changed = True
    missing = [b for b in ("J", "H", "K") if b not in mags]
    if missing:
        raise _bad(path, f"cannot rebuild {', '.join(missing)} from reference magnitude "
                         f"{ref!r} and colours {[f'{b}-{r}' for b, r, _ in colours]}; "
                         f"request colours linking {ref} to J, H and K (e.g. J-H H-K J-K "
                         f"V-K)")
    return mags["J"], mags["H"], mags["K"]


def read_besancon(path, *, law=None, transform=None):
    """
    Read a Besançon model catalogue into the intrinsic-star table of `GalaxyModel`.

    Parameters
    ----------
    path : str or path-like
        ASCII catalogue as returned by the Besançon model web service (V- or
        K-referenced, with or without kinematics).
    law : `~cnnext.extinction.ExtinctionLaw`, optional
        Ratios used to remove the file's ``Av`` (extinction already included in its
        apparent magnitudes) from the Johnson J, H, K; default
        `BESANCON_EXTINCTION` (Mathis 1990). Request catalogues with zero diffuse
        extinction so that cnnext applies its own.
    transform : dict, optional
        Coefficients replacing `CARPENTER_BB` for the Johnson → 2MASS conversion
        (see `johnson_to_2mass`).

    Returns
    -------
    stars : `~astropy.table.Table`
        ``l``, ``b`` (deg), ``distance`` (kpc), ``M_J``, ``M_H``, ``M_Ks``, ``J``,
        ``H``, ``Ks`` (2MASS, extinction removed), ``population`` (Besançon index:
        1-7 thin disc, 8 thick, 9 halo, 10 bulge), ``age`` (Gyr: the mid-age of the
        population in the built-in model, as the file gives only the population),
        ``mh`` ([Fe/H]), ``mass`` (M☉), ``phase`` (-1: the file gives a
        luminosity class instead, in ``lum_class``), plus ``Mv``, ``Teff`` (K),
        ``logg`` and ``Av`` (the removed extinction), and kinematic columns when
        present. ``meta`` holds ``l``, ``b``, ``solid_angle_deg2``,
        ``distance_range_kpc``, ``diffuse_av_per_kpc``, ``n_clouds``,
        ``reference_band``, ``colours``, ``kinematics`` and ``source``.

    Raises
    ------
    ValueError
        When the file is not a Besançon catalogue or lacks what is needed; the
        message names the file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="latin-1")
    except IsADirectoryError:
        raise _bad(path, "is a directory, not a Besançon catalogue") from None
    lines = text.splitlines()
    header_rows = [i for i, line in enumerate(lines)
                   if tuple(line.split()[:len(_FIRST)]) == _FIRST]
    if not header_rows:
        raise _bad(path, "not a Besançon catalogue: no header line starting with "
                         f"'{' '.join(_FIRST)}'")
    columns = lines[header_rows[0]].split()
    if tuple(columns[-len(_LAST):]) != _LAST:
        raise _bad(path, f"header line ends with {columns[-len(_LAST):]}, expected "
                         f"{list(_LAST)}")
    middle = columns[len(_FIRST):-len(_LAST)]
    refs = [c for c in middle if c in ("V", "K")]
    if len(refs) != 1:
        raise _bad(path, f"header must hold one reference magnitude 'V' or 'K' after the "
                         f"colours, got {middle}")
    ref = refs[0]
    kinematics = [c for c in middle if c in _KINEMATICS]
    stop = header_rows[1] if len(header_rows) > 1 else len(lines)
    rows = []
    for k in range(header_rows[0] + 1, stop):
        tokens = lines[k].split()
        if not tokens:
            continue
        if len(tokens) != len(columns):
            raise _bad(path, f"line {k + 1} has {len(tokens)} values, the header "
                             f"{len(columns)}")
        rows.append(tokens)
    try:
        data = np.array(rows, dtype=float).reshape(len(rows), len(columns)).T
    except ValueError as exc:
        raise _bad(path, f"non-numeric value in the star rows ({exc})") from None

    meta = {"source": str(path), "reference_band": ref,
            "colours": [c for c in middle if "-" in c], "kinematics": bool(kinematics)}
    field = next((m for m in map(_FIELD.search, lines) if m), None)
    if field is None:
        raise _bad(path, "no field line '(l = ...; b = ...)  Distance ... a ... kpc;  "
                         "Solid angle ... square degree'")
    meta.update({"l": float(field["l"]), "b": float(field["b"]),
                 "solid_angle_deg2": float(field["omega"]),
                 "distance_range_kpc": [float(field["dmin"]), float(field["dmax"])]})
    absorption = next((m for m in map(_ABSORPTION.search, lines) if m), None)
    meta["diffuse_av_per_kpc"] = float(absorption["av"]) if absorption else None
    meta["n_clouds"] = int(absorption["clouds"]) if absorption and absorption["clouds"] \
        else 0
    total = next((m for m in map(_TOTAL.search, lines[stop:]) if m), None)
    if total is not None and int(total["n"]) != len(rows):
        warnings.warn(f"{path}: {len(rows)} star rows but the summary says "
                      f"{int(total['n'])}: the file may be truncated", CnnextWarning)
    if meta["diffuse_av_per_kpc"]:
        warnings.warn(f"{path}: the catalogue was made with {meta['diffuse_av_per_kpc']} "
                      f"mag/kpc of diffuse extinction; it is removed star by star with "
                      f"the file's Av, but request 0 mag/kpc to avoid its selection "
                      f"effects", CnnextWarning)

    col = dict(zip(columns, data))
    J, H, K = _solve_magnitudes(path, columns, data, ref)
    law = BESANCON_EXTINCTION if law is None else law
    av = col["Av"]
    J, H, Ks = johnson_to_2mass(J - law.coefficients["J"] * av,
                                H - law.coefficients["H"] * av,
                                K - law.coefficients["Ks"] * av, transform)
    dist = col["Dist"]
    mu = distance_modulus(dist)
    population = col["Age"].astype(np.int16)
    mid_age = {p.index: 0.5 * (p.age[0] + p.age[1]) for p in default_populations()}
    out = Table()
    out["l"] = col["l"]
    out["b"] = col["b"]
    out["distance"] = dist
    for name, mag in (("J", J), ("H", H), ("Ks", Ks)):
        out[f"M_{name}"] = mag - mu
    for name, mag in (("J", J), ("H", H), ("Ks", Ks)):
        out[name] = mag
    out["population"] = population
    age_of = np.full(11, np.nan)
    for index, age in mid_age.items():
        age_of[index] = age
    out["age"] = np.where((population >= 1) & (population <= 10),
                          age_of[np.clip(population, 0, 10)], np.nan)
    out["mh"] = col["[Fe/H]"]
    out["mass"] = col["Mass"]
    out["phase"] = np.full(len(dist), -1, dtype=np.int16)
    out["lum_class"] = col["CL"].astype(np.int16)
    out["Mv"] = col["Mv"]
    out["Teff"] = 10.0 ** col["LTef"]
    out["logg"] = col["logg"]
    out["Av"] = av
    out["Mbol"] = np.where(col["Mbol"] == 0.0, np.nan, col["Mbol"])
    for name in kinematics:
        out[name] = col[name]
    out["l"].unit = out["b"].unit = "deg"
    out["distance"].unit = "kpc"
    for name in ("M_J", "M_H", "M_Ks", "J", "H", "Ks", "Mv", "Av", "Mbol"):
        out[name].unit = "mag"
    out["age"].unit = "Gyr"
    out["mass"].unit = "solMass"
    out["Teff"].unit = "K"
    for name, unit in (("mux", "mas/yr"), ("muy", "mas/yr"), ("Vr", "km/s"),
                       ("UU", "km/s"), ("VV", "km/s"), ("WW", "km/s")):
        if name in out.colnames:
            out[name].unit = unit
    order = np.argsort(out["distance"], kind="stable")
    out = out[order]
    out.meta.update(meta)
    return out
