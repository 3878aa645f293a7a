# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Synthetic training data: many (extinction profile -> observed CMD) examples.

For each sightline of a `~cnnext.training.presets.TrainingConfig`, the intrinsic
stars of its HEALPix cell are drawn once per *realisation* (independent
catalogues from the Galaxy model, or disjoint subsets of a Besançon catalogue);
each catalogue is then reddened by many random extinction profiles, observed
like 2MASS (errors, flags, completeness) and binned by `cnnext.cmds.build_cmds`
— the very builder used at inference — into one CMD per profile.

Examples are written in chunks (``.npz``: star counts per CMD bin as ``uint16``,
the true cumulative A_V at the distance nodes, star counts, sightline and
realisation indices) under ``workdir/dataset/<split>/``, with a ``manifest.json``
describing the configuration. The CMD counts are stored untransformed: the
spec's `~cnnext.cmds.CMDSpec.transform_counts` is applied when they are loaded,
exactly as `~cnnext.cmds.build_cmds` would have applied it. Generation runs in
parallel over catalogues and resumes: finished chunks are never recomputed.
"""

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..healpix import cell_area, cell_centres, lonlat_to_cells
from ..io.core import atomic_open
from ..observation import DESCRIPTORS

__all__ = ["Examples", "generate_dataset", "generate_evaluation_set", "load_examples",
           "make_examples", "SPLITS"]

log = logging.getLogger(__name__)

#: Dataset splits: training sightlines (train and val realisations) and evaluation.
SPLITS = ("train", "eval_inside", "eval_outside")
_SPLIT_CODE = {"train": 0, "eval_inside": 1, "eval_outside": 2}


@dataclass
class Examples:
    """
    A set of examples in memory.

    Attributes
    ----------
    counts : `numpy.ndarray`
        ``uint16`` star counts ``(n, channels, n_mag, n_colour)``; the network input
        is ``spec.transform_counts(counts)``.
    av : `numpy.ndarray`
        ``float32`` true cumulative A_V (mag) at the distance nodes ``(n, n_dist)``.
    n_stars : `numpy.ndarray`
        Stars counted in the first CMD channel.
    sightline, realisation : `numpy.ndarray`
        Indices of the sightline (in the split's list) and of the star catalogue.
    obs : `numpy.ndarray`
        ``float32`` observation descriptors estimated from each example's stars
        ``(n, 6)`` (mag, order of `cnnext.observation.DESCRIPTORS`; NaN when not
        estimated). The network reads ``cnnext.observation.descriptor_array(obs)``.
    """

    counts: np.ndarray
    av: np.ndarray
    n_stars: np.ndarray
    sightline: np.ndarray
    realisation: np.ndarray
    obs: np.ndarray = None

    def __post_init__(self):
        if self.obs is None:
            self.obs = np.full((len(self.av), len(DESCRIPTORS)), np.nan, np.float32)

    def __len__(self):
        return len(self.av)

    def cmds(self, spec):
        """Return the network input: ``spec.transform_counts(counts)`` (float32)."""
        return spec.transform_counts(self.counts)


#: Smallest share of young stars an example that has them gets
YOUNG_MIN_SHARE = 0.002


def _counting_spec(spec):
    # The same channels, ranges and quality cuts, but raw counts: the transform is
    # applied at load time (element-wise, so identical to build_cmds' own).
    return replace(spec, transform="linear", scale=1.0)


def _split_sightlines(config, split):
    if split == "train":
        return config.region.sightlines, config.dataset.n_realisations, \
            config.dataset.examples_per_realisation
    ev = config.evaluation
    coords = ev.inside if split == "eval_inside" else ev.outside
    return coords, ev.n_realisations, ev.examples_per_realisation


class _Generator:
    """Makes the examples of one star catalogue; picklable for worker processes."""

    def __init__(self, config):
        self.config = config
        ds = config.dataset
        self.spec = _counting_spec(ds.spec)
        self.law = ds.law
        self.order = config.region.healpix_order
        self.area = cell_area(self.order)
        self._source = None

    @property
    def source(self):
        if self._source is None:
            from .sources import make_source
            self._source = make_source(self.config)
        return self._source

    def catalogue(self, split, i, l, b, r):
        # the stars of the cell that contains (l, b): drawn around its centre
        lc, bc = _cell_centre(l, b, self.order)
        seed = [self.config.seed, _SPLIT_CODE[split], i, r]
        # drawn for the largest density of the jitter range; examples thin it
        area = self.area * self.config.dataset.density_jitter[1]
        stars = self.source.catalogue(lc, bc, area, realisation=r, seed=seed)
        if self.config.dataset.galaxies:
            from astropy.table import vstack

            from ..synthetic import unresolved_galaxies

            galaxies = unresolved_galaxies(lc, bc, area, faint_limit=self.source.faint_limit,
                                           seed=seed + [2])
            columns = ["l", "b", "distance", "J", "H", "Ks"]
            stars = vstack([stars[columns], galaxies[columns]])
        return stars

    def chunk(self, stars, split, i, l, b, r, k, n):
        lc, bc = _cell_centre(l, b, self.order)
        rng = np.random.default_rng([self.config.seed, _SPLIT_CODE[split], i, r, k, 1])
        return make_examples(stars, lc, bc, n, self.config, rng=rng, spec=self.spec,
                             law=self.law, source=self.source)


def make_examples(stars, l, b, n, config, *, rng, spec=None, law=None, source=None):
    """
    Redden one intrinsic catalogue with ``n`` random profiles and build the CMDs.

    Parameters
    ----------
    stars : `~astropy.table.Table`
        Intrinsic stars (``distance`` in kpc and unreddened ``J``, ``H``, ``Ks``).
    l, b : float
        Sightline (deg); the profiles' mean dust density depends on it.
    n : int
        Number of profiles.
    config : `~cnnext.training.presets.TrainingConfig`
    rng : `numpy.random.Generator`
    spec : `~cnnext.cmds.CMDSpec`, optional
        Spec of the CMDs (default: the configuration's, untransformed counts).
    law : `~cnnext.extinction.ExtinctionLaw`, optional
    source : object, optional
        The star source (`cnnext.training.sources`), for its profile and
        observation functions.

    Returns
    -------
    counts : `numpy.ndarray`
        ``uint16`` ``(n, channels, n_mag, n_colour)``.
    av : `numpy.ndarray`
        ``float32`` ``(n, n_dist)`` true cumulative A_V at the distance nodes.
    n_stars : `numpy.ndarray`
        ``int32`` ``(n,)``.
    obs : `numpy.ndarray`
        ``float32`` ``(n, 6)`` observation descriptors estimated from the stars.
    """
    from ..synthetic import patchy_extinction
    from .sources import make_source

    ds = config.dataset
    spec = _counting_spec(ds.spec) if spec is None else spec
    law = ds.law if law is None else law
    source = make_source(config) if source is None else source
    profiles = source.profiles(l, b, n, rng)
    av = profiles.nodes(ds.distances).astype(np.float32)
    lo, hi = ds.density_jitter
    s_lo, s_hi = ds.patchiness_range
    patchy = s_hi > 0 or ds.dense_fraction > 0
    if lo < hi or patchy:
        av_stars = profiles.at(np.asarray(stars["distance"], dtype=float))
        if patchy:
            s = rng.uniform(s_lo, s_hi, n)
            # (no extra draws without dense structure: older datasets stay reproducible)
            dense = {} if ds.dense_fraction == 0 else {
                "dense_fraction": rng.uniform(0.0, ds.dense_fraction, n),
                "dense_index": rng.uniform(*ds.dense_index, n)}
            patchy_extinction(av_stars, s, rng, **dense)
        if lo < hi:
            # keep a random fraction of the stars in each example: the unkept ones
            # are put behind 1000 mag of dust, which no band detects
            keep = np.exp(rng.uniform(np.log(lo / hi), 0.0, n))
            av_stars[rng.random(av_stars.shape) >= keep[:, None]] = 1000.0
        cmds, n_stars, obs = source.observe(stars, av_stars, spec, law, rng)
    else:
        cmds, n_stars, obs = source.observe(stars, profiles, spec, law, rng)
    if ds.young_stars > 0:
        cmds, n_stars = _add_young_stars(cmds, n_stars, ds.young_stars, spec, law, rng)
    counts = np.minimum(np.rint(cmds), np.iinfo(np.uint16).max).astype(np.uint16)
    return counts, av, n_stars.astype(np.int32), obs.astype(np.float32)


def _add_young_stars(cmds, n_stars, max_share, spec, law, rng):
    """Young stars in half of the examples, a log-uniform share of their stars."""
    from ..cmds import build_cmds
    from ..synthetic import young_stars

    n = len(n_stars)
    share = np.exp(rng.uniform(np.log(min(YOUNG_MIN_SHARE, max_share)), np.log(max_share), n))
    share[rng.random(n) < 0.5] = 0.0
    k = rng.poisson(share * n_stars)
    extra, counted = build_cmds(young_stars(int(k.sum()), rng, law), np.repeat(np.arange(n), k),
                                n, spec, apply_quality=False)
    return cmds + extra, n_stars + counted


def _chunk_path(root, split, i, r, k):
    return root / split / f"s{i:03d}_r{r:02d}_c{k:04d}.npz"


def _save_chunk(path, **arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as fh:
        np.savez(fh, **arrays)


def _catalogue_task(args):
    """Worker: make all missing chunks of one catalogue; return examples written."""
    gen, root, split, i, l, b, r, chunks = args
    stars = gen.catalogue(split, i, l, b, r)
    written = 0
    for k, n in chunks:
        counts, av, n_stars, obs = gen.chunk(stars, split, i, l, b, r, k, n)
        _save_chunk(_chunk_path(root, split, i, r, k), counts=counts, av=av,
                    n_stars=n_stars, obs=obs, sightline=np.full(n, i, np.int16),
                    realisation=np.full(n, r, np.int16))
        written += n
    return written, len(stars)


def _manifest(config, split_names):
    from .sources import make_source

    ds = config.dataset
    order = config.region.healpix_order
    info = {"dataset_hash": config.dataset_hash(), "seed": config.seed,
            "cmd_spec": ds.spec.to_dict(), "distances_kpc": ds.distances.tolist(),
            "healpix_order": order, "extinction_law": ds.law.to_dict(),
            "source": ds.source, "splits": {}}
    for split in split_names:
        coords, n_real, n_ex = _split_sightlines(config, split)
        cells = [int(c) for c in lonlat_to_cells(*np.transpose(coords), order)] \
            if coords else []
        info["splits"][split] = {"sightlines": coords, "cells": cells,
                                 "n_realisations": n_real,
                                 "examples_per_realisation": n_ex}
    source = make_source(config)
    info["mag_limits"] = source.mag_limits()
    info["source_description"] = source.describe()
    return info


def _source_changes(old, new, prefix=""):
    """Keys (dotted paths) where two star-source descriptions differ."""
    if old is None:
        return []  # a work directory from before the descriptions were compared
    if isinstance(old, dict) and isinstance(new, dict):
        changed = []
        for key in sorted(set(old) | set(new)):
            if key == "directory":  # a Besançon directory may move; its files count
                continue
            changed += _source_changes(old.get(key, "<missing>"), new.get(key, "<missing>"),
                                       f"{prefix}{key}.")
        return changed
    return [] if old == new else [prefix.rstrip(".") or "source"]


def _check_manifest(root, info):
    path = root / "manifest.json"
    if path.exists():
        old = json.loads(path.read_text())
        if old.get("dataset_hash") != info["dataset_hash"]:
            raise ValueError(f"work directory {str(root.parent)!r} holds a dataset made "
                             f"with another configuration (hash {old.get('dataset_hash')} "
                             f"!= {info['dataset_hash']}); use another --workdir")
        # The configuration hash does not cover what it leaves to the package's
        # defaults (the Galaxy model's parameters): compare the stored description
        # of the star source too, where the manifest has one.
        changed = _source_changes(old.get("source_description"), info["source_description"])
        if changed:
            raise ValueError(f"work directory {str(root.parent)!r} holds a dataset made "
                             f"from another star source (it differs in "
                             f"{', '.join(changed)}: another cnnext version or Galaxy "
                             f"model); use another --workdir")
        old["splits"].update({k: v for k, v in info["splits"].items()})
        info = {**info, **old, "splits": old["splits"]}  # keys it lacks are added
    _write_manifest(root, info)
    return info


def _write_manifest(root, info):
    root.mkdir(parents=True, exist_ok=True)
    with atomic_open(root / "manifest.json") as fh:
        fh.write(json.dumps(info, indent=1).encode())


def _run_splits(config, workdir, splits, *, n_jobs=1, progress_bar=False):
    root = Path(workdir) / "dataset"
    info = _check_manifest(root, _manifest(config, splits))
    t0 = time.perf_counter()
    gen = _Generator(config)
    chunk = config.dataset.chunk_size
    tasks, total, done = [], 0, 0
    for split in splits:
        coords, n_real, n_ex = _split_sightlines(config, split)
        sizes = [(k, min(chunk, n_ex - k * chunk)) for k in range(-(-n_ex // chunk))]
        for i, (l, b) in enumerate(coords):
            for r in range(n_real):
                missing = [(k, n) for k, n in sizes
                           if not _chunk_path(root, split, i, r, k).exists()]
                total += n_ex
                done += n_ex - sum(n for _, n in missing)
                if missing:
                    tasks.append((gen, root, split, i, l, b, r, missing))
    if done:
        log.info("dataset: %d of %d examples already on disk", done, total)
    # Wall seconds spent making these splits' examples, summed over every run that
    # made some (an interrupted one too: the generation resumes), so that a rerun
    # on a complete dataset still knows what it cost; None where chunks on disk
    # were made by a version that kept no time.
    seconds = info.setdefault("generation_seconds", {})
    key = ",".join(splits)
    if key not in seconds:
        seconds[key] = None if done else 0.0
    try:
        _make_chunks(tasks, total, done, n_jobs, progress_bar)
    finally:
        if tasks and seconds[key] is not None:
            seconds[key] += time.perf_counter() - t0
        _write_manifest(root, info)
    return info


def _make_chunks(tasks, total, done, n_jobs, progress_bar):
    """Run the catalogue tasks of `_run_splits`, in worker processes if ``n_jobs > 1``."""
    bar = None
    if progress_bar and tasks:
        from tqdm.auto import tqdm
        bar = tqdm(total=total, initial=done, desc="synthetic CMDs", unit="CMD")
    n_jobs = max(1, min(int(n_jobs), len(tasks))) if tasks else 1
    if n_jobs == 1:
        results = map(_catalogue_task, tasks)
        pool = None
    else:
        import multiprocessing as mp

        # spawn, not fork: the parent may hold torch's thread pools
        pool = mp.get_context("spawn").Pool(n_jobs)
        results = pool.imap_unordered(_catalogue_task, tasks)
    n_stars_seen = []
    try:
        for written, n_cat in results:
            n_stars_seen.append(n_cat)
            if bar is not None:
                bar.update(written)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        if bar is not None:
            bar.close()
    if n_stars_seen:
        log.info("dataset: %d catalogues made, %d-%d intrinsic stars each", len(tasks),
                 min(n_stars_seen), max(n_stars_seen))


def generate_dataset(config, workdir, *, n_jobs=1, progress_bar=False):
    """
    Make (or complete) the training examples of a configuration.

    Parameters
    ----------
    config : `~cnnext.training.presets.TrainingConfig`
    workdir : path-like
        Chunks go to ``workdir/dataset/train``; existing chunks are kept.
    n_jobs : int
        Worker processes (one star catalogue per task).
    progress_bar : bool
        Show a tqdm progress bar.

    Returns
    -------
    info : dict
        The manifest: configuration hash, spec, distances, ``cells`` of the training
        sightlines, ``mag_limits`` of the mock observation, source description,
        ``generation_seconds`` (``"train"``: wall seconds spent making the examples,
        summed over the runs that made some; `None` for chunks made by a cnnext
        version that did not keep the time).
    """
    info = _run_splits(config, workdir, ("train",), n_jobs=n_jobs, progress_bar=progress_bar)
    info["cells"] = info["splits"]["train"]["cells"]
    return info


def generate_evaluation_set(config, workdir, *, n_jobs=1, progress_bar=False):
    """Make (or complete) the evaluation examples (``eval_inside``, ``eval_outside``)."""
    splits = tuple(s for s, coords in (("eval_inside", config.evaluation.inside),
                                       ("eval_outside", config.evaluation.outside))
                   if coords)
    if not splits:
        return {}
    return _run_splits(config, workdir, splits, n_jobs=n_jobs, progress_bar=progress_bar)


def load_examples(workdir, split, *, config=None, check=True):
    """
    Load a split of a dataset into memory.

    Parameters
    ----------
    workdir : path-like
        The work directory given to `generate_dataset`.
    split : {"train", "val", "eval_inside", "eval_outside"}
        ``"train"`` and ``"val"`` are the training sightlines' realisations below
        and from ``n_realisations - n_val_realisations`` on.
    config : `~cnnext.training.presets.TrainingConfig`, optional
        Needed for ``"train"``/``"val"`` (the realisation split), checked against
        the manifest.
    check : bool
        Refuse a dataset made with another configuration (default). Pass `False`
        to reuse examples on purpose, e.g. to compare networks on an old dataset.

    Returns
    -------
    examples : `Examples`
    """
    root = Path(workdir) / "dataset"
    manifest = root / "manifest.json"
    if not manifest.exists():
        raise FileNotFoundError(f"no dataset in {str(workdir)!r} (missing "
                                f"{str(manifest)!r}); run generate_dataset first")
    info = json.loads(manifest.read_text())
    if check and config is not None and info["dataset_hash"] != config.dataset_hash():
        raise ValueError(f"the dataset in {str(workdir)!r} was made with another "
                         f"configuration")
    folder = "train" if split in ("train", "val") else split
    if split not in ("train", "val", "eval_inside", "eval_outside"):
        raise ValueError(f"split must be 'train', 'val', 'eval_inside' or 'eval_outside', "
                         f"got {split!r}")
    files = sorted((root / folder).glob("*.npz"))
    if split in ("train", "val"):
        if config is None:
            raise ValueError("load_examples needs the config for the 'train'/'val' split")
        n_train = config.dataset.n_realisations - config.dataset.n_val_realisations
        keep = (lambda r: r < n_train) if split == "train" else (lambda r: r >= n_train)
        files = [f for f in files if keep(int(f.stem.split("_")[1][1:]))]
    spec_shape = tuple([len(info["cmd_spec"]["channels"]), info["cmd_spec"]["n_mag"],
                        info["cmd_spec"]["n_colour"]])
    n_dist = len(info["distances_kpc"])
    sizes = []
    for f in files:
        with np.load(f) as z:
            sizes.append(len(z["av"]))
    n = int(sum(sizes))
    out = Examples(counts=np.empty((n, *spec_shape), np.uint16),
                   av=np.empty((n, n_dist), np.float32), n_stars=np.empty(n, np.int32),
                   sightline=np.empty(n, np.int16), realisation=np.empty(n, np.int16))
    start = 0
    for f, size in zip(files, sizes):
        with np.load(f) as z:
            for name in ("counts", "av", "n_stars", "sightline", "realisation", "obs"):
                if name in z:  # datasets made before cnnext 0.2 have no "obs"
                    getattr(out, name)[start:start + size] = z[name]
        start += size
    return out


def _cell_centre(l, b, order):
    cell = lonlat_to_cells(l, b, order)
    lc, bc = cell_centres(cell, order)
    return float(lc), float(bc)
