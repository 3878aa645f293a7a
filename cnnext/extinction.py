# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The extinction law: one object to redden training stars and to convert outputs.

The law that reddened a model's training stars is stored in its metadata and is
the law used to convert its A_V profiles to other bands.
"""

import astropy.units as u
import numpy as np

__all__ = ["BANDS", "ExtinctionLaw", "ISOPHOTAL_WAVELENGTHS", "BAND_NAMES"]

#: The 2MASS bands, in the order of the ``ph_qual`` and ``cc_flg`` characters (also
#: `cnnext.quality.BANDS`).
BANDS = ("J", "H", "Ks")

#: 2MASS isophotal wavelengths (Cohen et al. 2003).
ISOPHOTAL_WAVELENGTHS = {"J": 1.235 * u.micron, "H": 1.662 * u.micron,
                         "Ks": 2.159 * u.micron}

#: Output quantities `ExtinctionLaw.convert` knows, with their accepted spellings.
BAND_NAMES = {"V": "V", "A_V": "V", "AV": "V",
              "J": "J", "A_J": "J",
              "H": "H", "A_H": "H",
              "Ks": "Ks", "K": "Ks", "KS": "Ks", "A_Ks": "Ks", "A_K": "Ks",
              "E(B-V)": "E(B-V)", "EBV": "E(B-V)", "E(B–V)": "E(B-V)"}


def _law_model(name, Rv):
    from dust_extinction import averages, parameter_averages

    if hasattr(parameter_averages, name):
        return getattr(parameter_averages, name)(Rv=Rv)
    if hasattr(averages, name):
        return getattr(averages, name)()
    raise ValueError(f"unknown extinction law {name!r}: give a model name from "
                     f"dust_extinction.parameter_averages or dust_extinction.averages")


class ExtinctionLaw:
    """
    Ratios A_band / A_V for the 2MASS bands, from a `dust_extinction` model.

    Parameters
    ----------
    name : str
        Name of a model in `dust_extinction.parameter_averages` (e.g. ``"G23"``,
        ``"CCM89"``, ``"F19"``) or `dust_extinction.averages`.
    Rv : float
        R_V = A_V / E(B-V), for the parameter-average models.
    coefficients : dict, optional
        Explicit ``{"J": A_J/A_V, "H": …, "Ks": …}``, e.g. the PARSEC table; then
        ``name`` is only a label.

    Examples
    --------
    >>> from cnnext import ExtinctionLaw
    >>> law = ExtinctionLaw("G23", Rv=3.1)
    >>> round(law.coefficients["Ks"], 3)
    0.107
    >>> law.convert(10.0, "E(B-V)")  # doctest: +FLOAT_CMP
    3.225806451612903
    """

    def __init__(self, name="G23", Rv=3.1, coefficients=None):
        self.name = str(name)
        self.Rv = float(Rv)
        if not self.Rv > 0:
            raise ValueError(f"Rv must be positive, got {Rv!r}")
        if coefficients is None:
            model = _law_model(self.name, self.Rv)
            try:
                ratios = model(u.Quantity(list(ISOPHOTAL_WAVELENGTHS.values())))
            except ValueError as exc:
                raise ValueError(f"extinction law {self.name!r} does not cover the 2MASS "
                                 f"bands (1.235-2.159 micron): {exc}") from None
            coefficients = dict(zip(ISOPHOTAL_WAVELENGTHS, map(float, ratios)))
        missing = set(BANDS) - set(coefficients)
        if missing:
            raise ValueError(f"coefficients lacks bands {sorted(missing)}")
        self.coefficients = {b: float(coefficients[b]) for b in BANDS}

    def __repr__(self):
        c = self.coefficients
        return (f"ExtinctionLaw({self.name!r}, Rv={self.Rv}: A_J/A_V={c['J']:.4f}, "
                f"A_H/A_V={c['H']:.4f}, A_Ks/A_V={c['Ks']:.4f})")

    def __eq__(self, other):
        return (isinstance(other, ExtinctionLaw) and self.to_dict() == other.to_dict())

    def to_dict(self):
        """Return the law as a JSON-serialisable `dict` (for model and map metadata)."""
        return {"name": self.name, "Rv": self.Rv, "coefficients": dict(self.coefficients)}

    @classmethod
    def from_dict(cls, data):
        """Rebuild a law from the output of `to_dict`."""
        return cls(data["name"], data["Rv"], coefficients=data["coefficients"])

    def ratio(self, band):
        """
        Return A_band / A_V for an output quantity.

        ``band`` is ``"V"``, ``"J"``, ``"H"``, ``"Ks"`` or ``"E(B-V)"`` (for which the
        ratio is E(B-V)/A_V = 1/R_V).
        """
        key = BAND_NAMES.get(band) if isinstance(band, str) else None
        if key is None:
            raise ValueError(f"unknown band {band!r}: use one of 'V', 'J', 'H', 'Ks', "
                             f"'E(B-V)'")
        if key == "V":
            return 1.0
        if key == "E(B-V)":
            return 1.0 / self.Rv
        return self.coefficients[key]

    def convert(self, a_v, band):
        """
        Convert A_V (mag) to another band or to E(B-V) (mag).

        Parameters
        ----------
        a_v : float or array-like
            Extinction in the V band, in mag.
        band : str
            ``"V"``, ``"J"``, ``"H"``, ``"Ks"`` or ``"E(B-V)"``.
        """
        return np.asarray(a_v, dtype=float) * self.ratio(band) if np.ndim(a_v) \
            else float(a_v) * self.ratio(band)

    def redden(self, mags, a_v):
        """
        Return reddened magnitudes: ``{band: mag + A_band}`` for the 2MASS bands.

        Parameters
        ----------
        mags : mapping of str to array
            Intrinsic ``J``, ``H``, ``Ks`` magnitudes.
        a_v : array-like
            A_V in front of each star (mag), broadcastable against the magnitudes.
        """
        a_v = np.asarray(a_v, dtype=float)
        return {b: np.asarray(mags[b], dtype=float) + self.coefficients[b] * a_v
                for b in BANDS if b in mags}
