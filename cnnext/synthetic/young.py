# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Young stars with infrared excess: red sources that do not trace the column.

Star-forming clouds hold young stellar objects (YSOs) whose circumstellar discs
add emission in H and above all Ks: classical T Tauri stars lie on a locus in
the (J - H, H - Ks) plane to the right of the reddening band of normal stars,
``J - H = 0.58 (H - Ks) + 0.52`` for ``H - Ks`` between about 0.2 and 1.0 mag
(Meyer, Calvet & Hillenbrand 1997), and are seen through the dust of their own
cloud. In a CMD they sit among the most reddened background stars, so a network
that never saw them reads a cluster of them (NGC 1333 puts about a hundred in a
27' cell) as a very large column behind the cloud. `young_stars` draws such
sources; the training adds a few per cent of them to some examples
(``[dataset] young_stars``) without changing the target profile.
"""

import numpy as np
from astropy.table import Table

__all__ = ["young_stars"]

#: Slope and intercept of the classical T Tauri locus (Meyer et al. 1997).
CTTS_LOCUS = (0.58, 0.52)


def young_stars(n, rng, law, *, excess=(0.2, 1.0), embedded_av=(0.0, 15.0),
                ks_range=(8.0, 15.0), error=0.03):
    """
    Draw observed 2MASS photometry of young stars with infrared excess.

    Parameters
    ----------
    n : int
        Number of sources.
    rng : `numpy.random.Generator`
    law : `~cnnext.extinction.ExtinctionLaw`
        Reddens them (``law.ratio(band)`` = A_band / A_V).
    excess : (float, float)
        Range of the intrinsic ``H - Ks`` on the T Tauri locus (uniform).
    embedded_av : (float, float)
        Range of the A_V of their own cloud in front of them (uniform).
    ks_range : (float, float)
        Range of the observed Ks (uniform): YSOs of a nearby cloud are bright.
    error : float
        Photometric error of every band (mag); all are A-quality detections.

    Returns
    -------
    stars : `~astropy.table.Table`
        ``J``, ``H``, ``Ks``, their errors, ``ph_qual`` and ``cc_flg`` (cnnext
        star-table columns).

    Examples
    --------
    >>> import numpy as np
    >>> from cnnext import ExtinctionLaw
    >>> from cnnext.synthetic import young_stars
    >>> t = young_stars(1000, np.random.default_rng(1), ExtinctionLaw("G23", Rv=3.1),
    ...                 embedded_av=(0.0, 0.0))
    >>> jh, hk = t["J"] - t["H"], t["H"] - t["Ks"]
    >>> bool(np.allclose(jh, 0.58 * hk + 0.52))   # on the locus when unreddened
    True
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    slope, intercept = CTTS_LOCUS
    hk0 = rng.uniform(*excess, n)
    jh0 = slope * hk0 + intercept
    av = rng.uniform(*embedded_av, n)
    ks = rng.uniform(*ks_range, n)
    ratio = {band: law.ratio(band) for band in ("J", "H", "Ks")}
    h = ks + hk0 + av * (ratio["H"] - ratio["Ks"])
    j = h + jh0 + av * (ratio["J"] - ratio["H"])
    e = np.full(n, float(error))
    return Table({"J": j, "H": h, "Ks": ks, "e_J": e, "e_H": e.copy(), "e_Ks": e.copy(),
                  "ph_qual": np.full(n, "AAA"), "cc_flg": np.full(n, "000")})
