# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The offline demo: mock sky -> map with the CNN -> errors against the truth -> figures.

`run_demo` is what ``cnnext demo`` runs. A `~cnnext.synthetic.MockSky` over a
Carina-like region (l = 280-300 deg, abs(b) <= 2 deg) plays 2MASS: its stars are drawn
from the built-in Galaxy model, reddened by a known 3D extinction field and
observed with 2MASS errors and completeness. `~cnnext.build_map` maps the region
with the model exactly as it would map real 2MASS; since the true extinction is
known, the map's errors are measured and drawn (`cnnext.plotting`): the cumulative
A_V (`~cnnext.metrics.error_metrics`) and the 3D structure, i.e. whether the
dust sits at the right distances (`~cnnext.metrics.structure_metrics`: density
correlation, rings, fingers of God). Nothing is downloaded.
"""

import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .exceptions import CnnextWarning, ModelFileError
from .metrics import REPORT_DISTANCES

__all__ = ["run_demo", "demo_figures", "slice_longitudes", "format_report", "DemoResult",
           "DEMO_REGION", "QUICK_REGION", "METRIC_DISTANCES"]

log = logging.getLogger(__name__)

#: The demo's Carina-like region (l = 280-300 deg, abs(b) <= 2 deg).
DEMO_REGION = "galactic; box(290, 0, 20, 4, 0)"
#: A smaller region for ``--quick`` (l = 284-288 deg, abs(b) <= 1 deg).
QUICK_REGION = "galactic; box(286, 0, 4, 2, 0)"
#: Distances (kpc) where the errors are reported (`cnnext.metrics.REPORT_DISTANCES`).
METRIC_DISTANCES = REPORT_DISTANCES


@dataclass
class DemoResult:
    """
    What `run_demo` made.

    Attributes
    ----------
    outdir : `pathlib.Path`
        Output directory.
    map_path : `pathlib.Path`
        The map file built from the mock sky.
    profile_map : `~cnnext.profiles.ProfileMap`
        The map.
    truth : `numpy.ndarray`
        True cumulative A_V (mag) of each map cell at the map's distances.
    metrics : `~astropy.table.QTable`
        Errors of the map against the truth (`~cnnext.metrics.error_metrics`).
    structure : `~astropy.table.QTable`
        Structure metrics of the map against the truth
        (`~cnnext.metrics.structure_metrics`, with the fingers-of-God index).
    figures : dict of str to `pathlib.Path`
        PNG files: ``"slice"``, ``"face_on"``, ``"profiles"``, ``"cmd"``.
    model_path : `pathlib.Path`
        The ONNX model used.
    region : str
        The region mapped.
    seconds : float
        Wall-clock time of the whole demo.
    """

    outdir: Path
    map_path: Path
    profile_map: object
    truth: np.ndarray
    metrics: object
    figures: dict = field(default_factory=dict)
    model_path: Path = None
    region: str = ""
    seconds: float = 0.0
    structure: object = None


def _load_model(model, providers):
    from .model import CNNModel, default_model_path, regenerate_shipped_hint

    if isinstance(model, CNNModel):
        return model
    if model is None and not default_model_path().is_file():
        raise ModelFileError(
            f"the shipped model {str(default_model_path())!r} is missing from this "
            f"installation, so the demo cannot run with it: pass another model "
            f"(`cnnext demo --model PATH`), reinstall cnnext, or regenerate it with "
            f"{regenerate_shipped_hint(default_model_path())}")
    return CNNModel(model, providers=providers)


def _mock_sky(order, seed):
    from .synthetic import MockSky

    # the sky's structured dust (random field, clouds) covers l = 275-305, |b| <= 4
    return MockSky(seed=seed, order=order)


def _truth(sky, cells, order, distances):
    # the profile along the cell-centre ray is the one that reddened the cell's stars
    return np.asarray(sky.true_profile(cells, order).nodes(distances), dtype=float)


def slice_longitudes(cells, order):
    """
    Longitudes (deg) of a b = 0 slice across the cells' longitude range.

    Spaced at half a cell, for face-on views (`~cnnext.plotting.plot_face_on`).

    Examples
    --------
    >>> from cnnext.demo import slice_longitudes
    >>> from cnnext.healpix import lonlat_to_cells
    >>> lons = slice_longitudes(lonlat_to_cells([280.0, 282.0], [0.0, 0.0], 7), 7)
    >>> len(lons) > 2, bool(lons[0] < lons[-1])
    (True, True)
    """
    from .healpix import cell_centres, cell_size

    lon, _ = cell_centres(cells, order)
    step = cell_size(order) / 60.0 / 2.0
    lo, hi = float(lon.min()), float(lon.max())
    n = max(int(np.floor((hi - lo) / step)) + 1, 2)
    return np.linspace(lo, hi, n)


def demo_figures(profile_map, truth, outdir, *, source=None, n_profiles=4, dpi=110):
    """
    Draw the demo's figures of a map against its truth and save them as PNG.

    Parameters
    ----------
    profile_map : `~cnnext.profiles.ProfileMap`
        The predicted map.
    truth : array, shape (n_cells, n_dist)
        True cumulative A_V of each cell at the map's distances (mag).
    outdir : path-like
        Where the PNG files go.
    source : `~cnnext.photometry.base.PhotometrySource`, optional
        When given, the CMD of the first profile's cell is drawn too (``cmd.png``),
        with the CMD specification recorded in the map.
    n_profiles : int
        Number of sightlines in ``profiles.png`` (spread in longitude near b = 0).
    dpi : int
        Resolution of the PNG files.

    Returns
    -------
    dict of str to `pathlib.Path`
        ``"slice"`` (longitude-distance slice at b = 0: prediction, truth and
        their difference),
        ``"face_on"`` (extinction density in the plane seen from above),
        ``"profiles"`` (profiles with their 1-sigma band and the truth) and, with a
        source, ``"cmd"``.
    """
    import astropy.units as u
    from matplotlib.figure import Figure

    from . import compare, plotting
    from .healpix import cell_centres
    from .map import CNNExtinctionMap
    from .profiles import ProfileMap

    outdir = Path(outdir)
    pm = profile_map
    truth = np.asarray(truth, dtype=float)
    d = pm.distances
    truth_map = ProfileMap(cells=pm.cells, order=pm.order, distances=d, av=truth,
                           sigma=np.zeros_like(truth), n_stars=pm.n_stars, meta=dict(pm.meta))
    maps = {"cnnext": CNNExtinctionMap(map_fname=pm),
            "truth": CNNExtinctionMap(map_fname=truth_map)}
    lons = slice_longitudes(pm.cells, pm.order)
    with warnings.catch_warnings():
        # cells with too few stars are NaN by design; the report counts them
        warnings.simplefilter("ignore", CnnextWarning)
        table = compare.compare_slice(maps, lons, b=0.0, distances=d, return_sigma=False)
    figures = {}

    # colour scales follow the truth, the reference (a poor prediction then saturates
    # instead of washing the truth out)
    finite = np.ravel(table["truth"].to_value(u.mag))
    finite = finite[np.isfinite(finite)]
    vmax = float(np.percentile(finite, 99)) if finite.size else 1.0
    fig = Figure(figsize=(14.0, 4.2), layout="constrained")
    axes = fig.subplots(1, 3, sharey=True)
    for i, name in enumerate(maps):
        plotting.plot_slice(lons, d, table[name], ax=axes[i], vmax=vmax, colorbar=i == 1,
                            title=name)
    diff = table["cnnext"].to_value(u.mag) - table["truth"].to_value(u.mag)
    plotting.plot_slice(lons, d, diff, ax=axes[2], cmap="RdBu_r", vmin=-vmax / 2,
                        vmax=vmax / 2, title="cnnext - truth")
    for ax in axes[1:]:
        ax.set_ylabel("")
    fig.suptitle("cumulative A_V at b = 0°")
    figures["slice"] = outdir / "slice.png"
    fig.savefig(figures["slice"], dpi=dpi)

    x, y = plotting.face_on_grid(lons, d)
    # size the two equal-aspect panels to the wedge's shape, not to a fixed box
    ratio = float(np.clip(np.ptp(x) / max(np.ptp(y), 1e-9), 0.3, 3.0))
    fig = Figure(figsize=(2 * 4.5 * ratio + 1.8, 5.0), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    v = table["truth"].to_value(u.mag)
    prev = np.concatenate([np.zeros((v.shape[0], 1)), v[:, :-1]], axis=1)
    dens = np.ravel((v - prev) / np.diff(np.concatenate([[0.0], d])))
    dens = dens[np.isfinite(dens)]
    dmax = float(np.percentile(dens, 99)) if dens.size else 1.0
    for i, (ax, name) in enumerate(zip(axes, maps)):
        plotting.plot_face_on(lons, d, table[name], ax=ax, vmax=dmax, colorbar=i == 1,
                              title=f"{name}: dA_V/dd at b = 0°")
        if i:
            ax.set_ylabel("")
    figures["face_on"] = outdir / "face_on.png"
    fig.savefig(figures["face_on"], dpi=dpi)

    lon, lat = cell_centres(pm.cells, pm.order)
    ok = np.isfinite(pm.av).all(axis=1)
    rows = []
    if ok.any():
        cand = np.flatnonzero(ok)
        targets = np.quantile(lon[cand], np.linspace(0.1, 0.9, n_profiles))
        for t in targets:
            score = np.abs(lon[cand] - t) + 2.0 * np.abs(lat[cand])
            r = int(cand[np.argmin(score)])
            if r not in rows:
                rows.append(r)
    ncol = 2 if len(rows) > 1 else 1
    nrow = max(int(np.ceil(len(rows) / ncol)), 1)
    fig = Figure(figsize=(5.0 * ncol, 3.6 * nrow), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrow, ncol, sharex=True, squeeze=False)).ravel()
    for ax, r in zip(axes, rows):
        plotting.plot_profile(d, pm.av[r], pm.sigma[r], truth=truth[r], ax=ax,
                              label="cnnext")
        if np.isfinite(pm.dmax[r]) and pm.dmax[r] < d[-1]:
            # beyond dmax the red-clump giants are too faint to constrain the profile
            ax.axvline(float(pm.dmax[r]), color="0.5", ls=":", lw=1)
        ax.set_title(f"l = {lon[r]:.2f}°, b = {lat[r]:.2f}° ({int(pm.n_stars[r])} stars)")
    for i, ax in enumerate(axes):
        if i >= len(rows):
            ax.set_axis_off()
        elif i < len(axes) - ncol:
            ax.set_xlabel("")
    figures["profiles"] = outdir / "profiles.png"
    fig.savefig(figures["profiles"], dpi=dpi)

    if source is not None and rows:
        from .cmds import CMDSpec, build_cmds

        spec = CMDSpec.from_dict(pm.meta["cmd_spec"]) if "cmd_spec" in pm.meta else CMDSpec()
        cell = int(pm.cells[rows[0]])
        stars = source.query_cells(np.array([cell]), pm.order)
        cmds, n = build_cmds(stars, np.zeros(len(stars), np.int64), 1, spec)
        fig = plotting.plot_cmd(cmds[0], spec)
        fig.suptitle(f"CMD of cell {cell} (l = {lon[rows[0]]:.2f}°, b = "
                     f"{lat[rows[0]]:.2f}°): {int(n[0])} stars")
        figures["cmd"] = outdir / "cmd.png"
        fig.savefig(figures["cmd"], dpi=dpi)
    return figures


def run_demo(outdir="cnnext-demo", *, model=None, quick=False, region=None, seed=2022,
             progress_bar=False, providers="auto"):
    """
    Run the offline demo: mock sky -> map -> errors against the truth -> figures.

    Parameters
    ----------
    outdir : path-like
        Directory for the map (``demo-map.fits``), the error table
        (``metrics.ecsv``), the structure table (``structure.ecsv``) and the
        figures (created if needed; files replaced).
    model : path-like or `~cnnext.model.CNNModel`, optional
        The network; default the shipped model (a clear `ModelFileError` if the
        installation lacks it).
    quick : bool
        Map the small `QUICK_REGION` instead of `DEMO_REGION`.
    region : str or region, optional
        Any region `~cnnext.build_map` accepts, instead of the default ones.
    seed : int
        Seed of the mock sky (stars, extinction field, photometric noise).
    progress_bar : bool
        Show the map build's progress bar.
    providers : str or list
        onnxruntime execution providers.

    Returns
    -------
    `DemoResult`

    Examples
    --------
    A small region, to run in a few seconds (``cnnext demo`` maps
    `DEMO_REGION`):

    >>> import tempfile
    >>> from cnnext.demo import format_report, run_demo
    >>> result = run_demo(tempfile.mkdtemp(), region="galactic; box(286, 0, 1, 1, 0)")
    >>> result.profile_map
    <ProfileMap 3 cells at HEALPix order 7, 100 distances 0.1-10 kpc>
    >>> sorted(result.figures)
    ['cmd', 'face_on', 'profiles', 'slice']
    >>> print(format_report(result))  # doctest: +ELLIPSIS
    cnnext demo: galactic; box(286, 0, 1, 1, 0)
    ...
    """
    from .build import build_map
    from .healpix import cell_centres
    from .metrics import error_metrics, structure_metrics

    t0 = time.perf_counter()
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    model = _load_model(model, providers)
    region = region if region is not None else (QUICK_REGION if quick else DEMO_REGION)
    sky = _mock_sky(model.order, seed)
    map_path = outdir / "demo-map.fits"
    log.info("demo: building the map of %s from the mock sky", region)
    pm = build_map(region, source=sky, model=model, output=map_path, overwrite=True,
                   resume=False, progress_bar=progress_bar)
    truth = _truth(sky, pm.cells, pm.order, pm.distances)
    metrics = error_metrics(pm.av, pm.sigma, truth, pm.distances, at=METRIC_DISTANCES)
    metrics.meta.update(region=str(region), model_sha256=model.sha256, seed=seed,
                        n_cells=len(pm), n_predicted=int(np.isfinite(pm.av).all(axis=1).sum()))
    metrics.write(outdir / "metrics.ecsv", overwrite=True)
    lon, lat = cell_centres(pm.cells, pm.order)
    structure = structure_metrics(pm.av, truth, pm.distances, lon=lon, lat=lat)
    structure.meta.update(region=str(region), model_sha256=model.sha256, seed=seed)
    structure.write(outdir / "structure.ecsv", overwrite=True)
    log.info("demo: drawing figures in %s", outdir)
    figures = demo_figures(pm, truth, outdir, source=sky)
    return DemoResult(outdir=outdir, map_path=map_path, profile_map=pm, truth=truth,
                      metrics=metrics, figures=figures, model_path=Path(model.path),
                      region=str(region), seconds=time.perf_counter() - t0,
                      structure=structure)


def format_report(result):
    """Return the demo's summary (region, model, error table, files) as text."""
    import astropy.units as u

    pm = result.profile_map
    n_ok = int(np.isfinite(pm.av).all(axis=1).sum())
    m = result.metrics
    lines = [f"cnnext demo: {result.region}",
             f"  model      {result.model_path} (sha256 {pm.meta.get('model_sha256', '?')[:12]})",
             f"  map        {result.map_path}: {len(pm)} cells at HEALPix order {pm.order}, "
             f"{n_ok} predicted ({len(pm) - n_ok} with too few stars)",
             "",
             "Errors of the predicted cumulative A_V against the mock sky's truth",
             f"(rel_err: median |pred - true| / max(true, {m.meta['rel_err_floor']:g} mag); "
             "coverage68: fraction of sightlines whose truth lies in the 1-sigma band)",
             "",
             f"{'d (kpc)':>8} {'n':>5} {'true A_V':>9} {'bias':>8} {'rms':>8} {'rel_err':>8} "
             f"{'cover68':>8}"]
    for row in m:
        lines.append(f"{row['distance'].to_value(u.kpc):8.1f} {int(row['n']):5d} "
                     f"{row['truth_median'].to_value(u.mag):9.2f} "
                     f"{row['bias'].to_value(u.mag):+8.3f} {row['rms'].to_value(u.mag):8.3f} "
                     f"{row['median_rel_err']:8.3f} {row['coverage68']:8.2f}")
    lines += _structure_lines(result.structure)
    lines.append("")
    lines.append(f"  error table  {result.outdir / 'metrics.ecsv'}")
    if result.structure is not None:
        lines.append(f"  structure    {result.outdir / 'structure.ecsv'}")
    for name, path in result.figures.items():
        lines.append(f"  figure       {path}  ({name})")
    lines.append(f"done in {result.seconds:.1f} s")
    lines += ["", *_next_steps(result)]
    return "\n".join(lines)


def _next_steps(result):
    """What a newcomer can do next with the map just made (the demo's last lines)."""
    from .healpix import cell_centres

    pm = result.profile_map
    ok = np.flatnonzero(np.isfinite(pm.av).all(axis=1))
    l, b = cell_centres(pm.cells[ok[len(ok) // 2] if ok.size else 0], pm.order)
    path = result.map_path
    return ["What to try next:",
            f"  cnnext query {l:.2f} {b:.2f} 4 --map {path}",
            "      the extinction to 4 kpc from the map just made (drop the 4 for the "
            "profile)",
            f"  CNNExtinctionMap(map_fname={str(path)!r}).query(SkyCoord(...))",
            "      the same in Python (cnnext.CNNExtinctionMap, dustmaps-style queries)",
            "  cnnext map REGION -o my-map.fits --source STARS.fits",
            "      a map from your own 2MASS catalogue (or `cnnext fetch` one first; "
            "--source vizier downloads on the fly)"]


def _structure_lines(structure):
    """The structure part of the demo's summary (`format_report`)."""
    import astropy.units as u

    if structure is None:
        return []
    meta = structure.meta
    lines = ["",
             f"Structure: extinction density dA_V/dd against the truth, d <= "
             f"{meta['d_max']:g} kpc, boxcar-smoothed",
             "(density_r: Pearson r; rings: share of the density error common to all "
             "sightlines",
             f"at one distance, {100 * meta['ring_share_random']:.1f} % for independent "
             "errors; mean_var: variance over distance of the",
             "across-sightline mean density, predicted / true)",
             "",
             f"{'smooth':>8} {'density_r':>10} {'rings':>8} {'mean_var':>9}"]
    for row in structure:
        lines.append(f"{row['scale'].to_value(u.pc):5.0f} pc {row['density_r']:10.3f} "
                     f"{100 * row['ring_share']:7.1f}% {row['mean_density_ratio']:9.2f}")
    if "fog_index" in meta:
        lines.append(f"fingers-of-God index {meta['fog_index']:.2f} (radial / tangential "
                     "correlation length of the density,")
        lines.append("predicted / true: above 1 features stretched along the sightlines, "
                     "below 1 across)")
    return lines
