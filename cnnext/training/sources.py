# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Where training stars come from: the built-in Galaxy model or Besançon catalogues.

A source gives, for a sightline, an intrinsic star catalogue per realisation,
random extinction profiles, and the mock 2MASS observation of a catalogue
through many profiles (`cnnext.synthetic.observe_many`, which bins the stars
with `cnnext.cmds.build_cmds`). `make_source` picks the source named by a
`~cnnext.training.presets.DatasetConfig`: ``"galaxy"`` or a directory of
Besançon model catalogues.
"""

import logging
from pathlib import Path

import numpy as np

from ..quality import BANDS

__all__ = ["GalaxySource", "BesanconSource", "make_source"]

log = logging.getLogger(__name__)

#: Extra depth (in completeness widths beyond the 50% magnitude) down to which
#: intrinsic stars are drawn: fainter ones are detected with probability < 1%,
#: and extinction only makes stars fainter.
_DEPTH_WIDTHS = 5.0
#: The same with drawn observing conditions, from the deepest 50% magnitude and
#: the widest completeness of their ranges: such extreme draws are rare, and the
#: CMDs end at Ks 16 anyway.
_DEPTH_WIDTHS_DRAWN = 1.5


class _Base:
    """Profiles and observation, shared by all sources."""

    def __init__(self, dataset):
        from ..synthetic import PhotometricModel

        self.dataset = dataset
        self.photometry = PhotometricModel(**dataset.observation)
        self.conditions = dataset.observing_conditions
        prof = dict(dataset.profiles)
        self._profile_max = float(prof.pop("max_distance", max(16.0, dataset.d_max_kpc)))
        self._profile_step = float(prof.pop("step", 0.01))
        self._profile_mean = prof.pop("mean", None)
        self._profile_hyper = prof

    @property
    def faint_limit(self):
        """Faintest intrinsic Ks (mag) of the drawn stars."""
        pm, cond = self.photometry, self.conditions
        if cond is None:
            return pm.m50("Ks") + _DEPTH_WIDTHS * pm.width["Ks"]
        return (pm.m10["Ks"] + cond.max_offset() + cond.m50_offset[1]
                + _DEPTH_WIDTHS_DRAWN * cond.width[1])

    def mag_limits(self):
        """The mock observation's limits (model metadata ``mag_limits``)."""
        pm = self.photometry
        limits = {band: {"m10": pm.m10[band], "m50": pm.m50(band), "width": pm.width[band],
                         "saturation": pm.saturation[band]} for band in BANDS}
        limits["photometric_model"] = pm.to_dict()
        limits["intrinsic_faint_limit_Ks"] = self.faint_limit
        if self.conditions is not None:
            limits["observing_conditions"] = self.conditions.to_dict()
        return limits

    def profiles(self, l, b, n, rng):
        """``n`` random profiles (`~cnnext.synthetic.ExtinctionProfiles`) for (l, b)."""
        from ..synthetic import random_profiles

        return random_profiles(n, l=l, b=b, seed=rng, max_distance=self._profile_max,
                               step=self._profile_step, mean=self._profile_mean,
                               **self._profile_hyper)

    def observe(self, stars, profiles, spec, law, rng):
        """
        Observe one catalogue through each profile.

        Returns the CMDs (``build_cmds`` of the observed stars), the star counts
        and the observation descriptors estimated from each example's stars. With
        drawn observing conditions, every ``dataset.observation_group``
        consecutive profiles share one draw.
        """
        from ..synthetic import observe_many

        if self.conditions is None:
            return observe_many(stars, profiles, spec=spec, law=law, model=self.photometry,
                                seed=rng, descriptors=True)
        n = len(profiles)
        group = self.dataset.observation_group
        parts = [observe_many(stars, profiles[start:start + group], spec=spec, law=law,
                              model=self.conditions.draw(rng, self.photometry), seed=rng,
                              descriptors=True)
                 for start in range(0, n, group)]
        return tuple(np.concatenate(p) for p in zip(*parts))


class GalaxySource(_Base):
    """
    Stars from the built-in `~cnnext.synthetic.GalaxyModel`.

    Parameters
    ----------
    dataset : `~cnnext.training.presets.DatasetConfig`
        ``dataset.galaxy`` holds `GalaxyModel` keyword arguments, plus optionally
        ``max_distance`` (kpc, default 25) for the sampling.
    """

    def __init__(self, dataset):
        super().__init__(dataset)
        from ..synthetic import GalaxyModel

        options = dict(dataset.galaxy)
        self.max_distance = float(options.pop("max_distance", 25.0))
        self.model = GalaxyModel(**options)

    def describe(self):
        """Return a JSON-serialisable description (stored in the model metadata)."""
        return {"kind": "galaxy", "model": self.model.to_dict(),
                "max_distance_kpc": self.max_distance, "faint_limit_Ks": self.faint_limit}

    def catalogue(self, l, b, area, *, realisation, seed):
        """Draw the intrinsic stars of a cell of ``area`` deg² centred on (l, b)."""
        return self.model.sample(l, b, area, max_distance=self.max_distance,
                                 faint_limit=self.faint_limit, band="Ks", seed=seed)


class BesanconSource(_Base):
    """
    Stars from Besançon model catalogues in a directory.

    Each file is one catalogue of one field (read with
    `cnnext.synthetic.read_besancon`, which gives 2MASS magnitudes). A training
    sightline uses the catalogues whose field centre is nearest to it (within
    2 deg); its realisations are disjoint random subsets of those stars, each the
    size of one HEALPix cell. Request the catalogues *without* diffuse extinction
    and over an area of at least ``n_realisations`` cells.

    Parameters
    ----------
    dataset : `~cnnext.training.presets.DatasetConfig`
        ``dataset.source`` is the directory; ``dataset.galaxy`` may hold
        ``pattern`` (glob of the files, default ``"*"``).
    """

    def __init__(self, dataset):
        super().__init__(dataset)
        from ..synthetic import read_besancon

        self.directory = Path(dataset.source).expanduser()
        if not self.directory.is_dir():
            raise FileNotFoundError(f"Besançon catalogue directory {str(self.directory)!r} "
                                    f"does not exist")
        pattern = dataset.galaxy.get("pattern", "*")
        self.files = sorted(p for p in self.directory.glob(pattern) if p.is_file())
        if not self.files:
            raise FileNotFoundError(f"no Besançon catalogues in {str(self.directory)!r} "
                                    f"(pattern {pattern!r})")
        self._read = read_besancon
        self._fields = None
        self._cache = {}

    def describe(self):
        """Return a JSON-serialisable description (stored in the model metadata)."""
        return {"kind": "besancon", "directory": str(self.directory),
                "files": [p.name for p in self.files], "faint_limit_Ks": self.faint_limit}

    def _field_centres(self):
        if self._fields is None:
            fields = []
            for path in self.files:
                cat = self._stars(path)
                fields.append((float(cat.meta["l"]), float(cat.meta["b"]),
                               float(cat.meta["solid_angle_deg2"])))
            self._fields = np.array(fields)
        return self._fields

    def _stars(self, path):
        if path not in self._cache:
            self._cache[path] = self._read(path)
        return self._cache[path]

    def catalogue(self, l, b, area, *, realisation, seed):
        """Stars of one realisation of the cell at (l, b): a disjoint random subset."""
        from astropy.table import vstack

        fields = self._field_centres()
        lr, br = np.deg2rad(l), np.deg2rad(b)
        fl, fb = np.deg2rad(fields[:, 0]), np.deg2rad(fields[:, 1])
        sep = np.rad2deg(np.arccos(np.clip(np.sin(br) * np.sin(fb) + np.cos(br) * np.cos(fb)
                                           * np.cos(lr - fl), -1, 1)))
        near = np.flatnonzero(sep <= sep.min() + 1e-6)
        if sep.min() > 2.0:
            raise ValueError(f"no Besançon catalogue within 2 deg of the sightline "
                             f"(l={l:.2f}, b={b:.2f}) in {str(self.directory)!r}")
        stars = vstack([self._stars(self.files[i]) for i in near], metadata_conflicts="silent")
        total_area = float(fields[near, 2].sum())
        n_real = self.dataset.n_realisations
        n_parts = int(total_area // area)
        # the same permutation for every realisation of this sightline (seed without
        # the realisation index), cut into disjoint cell-sized parts
        rng = np.random.default_rng(list(seed[:-1]) + [10_000])
        order = rng.permutation(len(stars))
        per = int(round(len(stars) * area / total_area))
        if n_parts >= n_real:
            sel = order[realisation * per:(realisation + 1) * per]
        else:
            log.warning("Besançon catalogues near (%.2f, %.2f) cover %.3f deg^2, less than "
                        "%d cells: realisations overlap", l, b, total_area, n_real)
            sel = np.random.default_rng(seed).choice(len(stars), size=per, replace=False) \
                if per <= len(stars) else order
        out = stars[np.sort(sel)]
        bright = np.asarray(out["Ks"], float) <= self.faint_limit
        return out[bright]


def make_source(config):
    """Return the star source of a training configuration (or its `DatasetConfig`)."""
    dataset = getattr(config, "dataset", config)
    if dataset.source == "galaxy":
        return GalaxySource(dataset)
    return BesanconSource(dataset)
