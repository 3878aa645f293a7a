# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
3D structure of a model's map of the demo's mock sky (issue 14): does the dust sit
at the right distances, or does the network draw rings?

Maps the `cnnext demo` region of the mock sky (`cnnext.demo.DEMO_REGION`, its
seed) with the shipped model or ``--model``, then prints the structure metrics of
`cnnext.metrics` against the sky's true extinction: the density correlation, the
ring share and the mean-density variance ratio at 100, 300 and 500 pc smoothing,
the fingers-of-God index, and the median relative error of the cumulative A_V at
`cnnext.metrics.REPORT_DISTANCES` (the structure must not be bought with the
cumulative). The goals of issue 14 are printed beside the numbers, and the density
r at 300 pc within 0-2, 2-4, 4-6 and 6-8 kpc says where along the sightlines the
map reads the structure.

The truth blurred along each sightline (`cnnext.metrics.blur_along_sightlines`,
Gaussians of 100, 200 and 300 pc, then of 10, 15 and 20 % of the distance) is
scored the same way, once: a map whose only fault is its resolution along the
sightline, with no favoured distance. On a sky whose clouds sit at similar
distances on many sightlines, its ring share is the floor that resolution alone
sets. A width in proportion to the distance is the resolution of photometric
distances (the absolute magnitudes of stars of one colour scatter by a few tenths
of a magnitude: 10 % of the distance for 0.2 mag); the density r such a map reaches
says which resolution a goal asks of the network.

``--model`` may be given several times: each model maps the same sky and gets its
own tables. ``--plots DIR`` draws ``DIR/face_on_before_after.png``: the face-on
view of the extinction density dA_V/dd at b = 0 (`cnnext.plotting.plot_face_on`),
the truth first and then one panel per model, on one colour scale, each title
with the model's density r and ring share at 100 pc.

``--neighbours W`` (repeatable, or a comma list) also scores each model's map
after `cnnext.neighbours.smooth_neighbours` with weight ``W`` (each cell's density
mixed with its HEALPix neighbours'; ``--neighbour-iterations`` passes), with the
same metrics and tables: does sharing between sightlines shorten the fingers of
God without blurring the clouds?

``--seed`` picks the mock sky (the demo's, 2022, by default). One sky is one
draw of its clouds, arm and stars: a model that reads one sky's near dust a little
high may read another's right. Given several seeds (a comma list), each model
maps each sky, and the full tables are followed by a summary, one line per sky
and model (density r at 100 and 300 pc, ring share at 100 pc, fingers-of-God
index, median relative error of the cumulative at 1-8 kpc), with the truth
blurred by 15 % of the distance on each sky as its reference (a sky whose clouds
share their distances has a ring share even at that resolution), the mean over
the skies, and the differences, sky by sky, of every model from the blurred
truth and of every model after the first from the first, as mean ± standard
error over the skies. ``--plots`` draws the first sky.

Usage::

    python benchmarks/bench_structure.py
    python benchmarks/bench_structure.py --model my-model.onnx --quick
    python benchmarks/bench_structure.py --model old.onnx --model new.onnx --plots plots/
    python benchmarks/bench_structure.py --neighbours 0,0.25,0.5,0.75
    python benchmarks/bench_structure.py --model old.onnx --model new.onnx --seed 2022,1,2,3,4
"""

import argparse
import dataclasses
import logging
import tempfile
import time
import warnings
from pathlib import Path

import astropy.units as u
import numpy as np

#: Goals of issue 14 on the demo's mock sky: scale (pc) -> (min density r, max ring share)
GOALS = {100: (0.35, 0.03), 300: (0.65, None)}
#: Gaussian widths (pc) of the blurred-truth references ...
BLUR_PC = (100, 200, 300)
#: ... and widths in proportion to the distance (fraction of it; 20 pc at least)
BLUR_FRACTIONS = (0.10, 0.15, 0.20)
#: Ranges of distance (kpc) of the density r at 300 pc printed range by range: where
#: along the sightlines a map reads the structure, and where it does not
DISTANCE_RANGES = ((0.0, 2.0), (2.0, 4.0), (4.0, 6.0), (6.0, 8.0))
BLUR_MIN_PC = 20
#: Distances (kpc) near the Sun where the predicted and true A_V are printed: the
#: colours of the stars barely show the dust there (0.1 mag of A_V reddens J - Ks
#: by 0.017 mag), and a network reads it mostly from its training profiles
NEAR_KPC = (0.5, 1.0)


def run(model=None, *, quick=False, seed=2022, outdir=None):
    """Map the mock sky and return the `cnnext.demo.DemoResult`."""
    from cnnext.demo import run_demo
    from cnnext.model import CNNModel

    model = CNNModel(model, providers="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        return run_demo(outdir or tmp, model=model, quick=quick, seed=seed, providers="cpu")


def _at_scale(structure, pc):
    """The row of a structure table at a smoothing scale (pc)."""
    for row in structure:
        if int(round(row["scale"].to_value(u.pc))) == pc:
            return row
    raise KeyError(f"no {pc} pc row in the structure table")


def face_on_figure(results, path, *, dpi=80):
    """
    Draw the face-on extinction density of the truth and of each result's map.

    One row of panels: the mock sky's truth, then one panel per
    `cnnext.demo.DemoResult` (titled with its model file and its density r and
    ring share at 100 pc), on the colour scale of the truth (its 99th percentile),
    as the demo's own ``face_on.png``. The maps are read along b = 0 on the
    longitudes of the demo's slices; the truth is that of the first result (all
    results map the same sky).

    Returns
    -------
    `pathlib.Path`
        The PNG file written.
    """
    from matplotlib.figure import Figure

    from cnnext import compare, plotting
    from cnnext.demo import slice_longitudes
    from cnnext.exceptions import CnnextWarning
    from cnnext.map import CNNExtinctionMap
    from cnnext.profiles import ProfileMap

    first = results[0].profile_map
    d = first.distances
    truth = ProfileMap(cells=first.cells, order=first.order, distances=d,
                       av=np.asarray(results[0].truth, dtype=float),
                       sigma=np.zeros_like(results[0].truth, dtype=float),
                       n_stars=first.n_stars, meta=dict(first.meta))
    maps = {"truth": CNNExtinctionMap(map_fname=truth)}
    maps.update({f"model {i}": CNNExtinctionMap(map_fname=r.profile_map)
                 for i, r in enumerate(results)})
    lons = slice_longitudes(first.cells, first.order)
    with warnings.catch_warnings():
        # cells with too few stars are NaN by design
        warnings.simplefilter("ignore", CnnextWarning)
        table = compare.compare_slice(maps, lons, b=0.0, distances=d, return_sigma=False)

    x, y = plotting.face_on_grid(lons, d)
    ratio = float(np.clip(np.ptp(x) / max(np.ptp(y), 1e-9), 0.3, 3.0))
    n = len(maps)
    fig = Figure(figsize=(n * 5.5 * ratio + 1.8, 6.0), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, n, sharey=True))
    titles = ["truth (mock sky)\n\n"]
    for r in results:
        row = _at_scale(r.structure, 100)
        titles.append(f"{Path(r.model_path).name}\nat 100 pc: density r "
                      f"{row['density_r']:.2f},\nring share {100 * row['ring_share']:.1f} %")
    vmax = None
    for i, (ax, name) in enumerate(zip(axes, maps)):
        plotting.plot_face_on(lons, d, table[name], ax=ax, vmax=vmax, colorbar=i == n - 1,
                              title=titles[i])
        if i == 0:
            # the truth's density, as drawn, sets the scale of every panel
            mesh = ax.collections[0]
            dens = np.ma.compressed(mesh.get_array())
            dens = dens[np.isfinite(dens)]
            vmax = float(np.percentile(dens, 99)) if dens.size else 1.0
            mesh.set_clim(0.0, vmax)
        else:
            ax.set_ylabel("")
        ax.title.set_fontsize("medium")
        ax.set_xlabel("x (kpc, towards the GC)")
    fig.suptitle(f"extinction density dA_V/dd at b = 0°\ndemo's mock sky, "
                 f"{results[0].region}")
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    return path


def with_neighbours(result, weight, *, iterations=1):
    """
    The demo result with its map smoothed across neighbouring sightlines and scored.

    The map is passed through `cnnext.neighbours.smooth_neighbours`; its errors
    and structure against the same truth are computed by the functions the demo
    uses (`cnnext.metrics.error_metrics`, `cnnext.metrics.structure_metrics`).
    """
    from cnnext.demo import METRIC_DISTANCES
    from cnnext.healpix import cell_centres
    from cnnext.metrics import error_metrics, structure_metrics
    from cnnext.neighbours import smooth_neighbours

    pm = smooth_neighbours(result.profile_map, weight, iterations=iterations)
    lon, lat = cell_centres(pm.cells, pm.order)
    metrics = error_metrics(pm.av, pm.sigma, result.truth, pm.distances, at=METRIC_DISTANCES)
    metrics.meta.update(result.metrics.meta)
    structure = structure_metrics(pm.av, result.truth, pm.distances, lon=lon, lat=lat)
    structure.meta.update({k: v for k, v in result.structure.meta.items()
                           if k not in structure.meta})
    return dataclasses.replace(result, profile_map=pm, metrics=metrics, structure=structure)


def _weights(values):
    """The ``--neighbours`` weights: each option a number or a comma list."""
    out = []
    for value in values or ():
        for part in str(value).split(","):
            if part.strip():
                out.append(float(part))
    return out


def _r_by_distance(pred, truth, d, scale=0.3):
    """Density r at ``scale`` (kpc) within each of `DISTANCE_RANGES`, as text."""
    from cnnext.metrics import density_correlation

    return "/".join(f"{density_correlation(pred, truth, d, scale=scale, d_min=lo, d_max=hi):.2f}"
                    for lo, hi in DISTANCE_RANGES)


def _variance_shares(truth, d, scale=0.3):
    """Each range's share of the truth's density variance about its mean, as text."""
    from cnnext.metrics import density

    rho, dk = density(truth[np.isfinite(truth).all(axis=1)], d, scale=scale,
                      d_max=DISTANCE_RANGES[-1][1])
    dev = (rho - rho.mean()) ** 2
    return "/".join(f"{dev[:, (dk > lo) & (dk <= hi)].sum() / dev.sum():.2f}"
                    for lo, hi in DISTANCE_RANGES)


def _slash(values, fmt="g"):
    return "/".join(f"{v:{fmt}}" for v in values)


def _near_sun(pred, truth, d):
    """Predicted and true A_V of the cells with a prediction at `NEAR_KPC`."""
    pred, truth = np.asarray(pred, float), np.asarray(truth, float)
    ok = np.isfinite(pred).all(axis=1) & np.isfinite(truth).all(axis=1)
    at = np.asarray(NEAR_KPC)
    return (np.array([np.interp(at, d, row) for row in pred[ok]]),
            np.array([np.interp(at, d, row) for row in truth[ok]]))


def _ranges_label():
    return "/".join(f"{lo:g}-{hi:g}" for lo, hi in DISTANCE_RANGES) + " kpc"


def report(result):
    """Print the structure and cumulative tables of a demo result."""
    s, m = result.structure, result.metrics
    print(f"model {result.model_path}")
    smoothing = result.profile_map.meta.get("neighbour_smoothing")
    if smoothing:
        print(f"neighbour smoothing (cnnext.neighbours.smooth_neighbours): weight "
              f"{smoothing['weight']:g}, {smoothing['iterations']} pass(es)")
    print(f"region {result.region}: {s.meta['n']} sightlines with a prediction, "
          f"d <= {s.meta['d_max']:g} kpc; independent errors would give a ring share of "
          f"{100 * s.meta['ring_share_random']:.1f} %")
    print()
    print(f"{'smoothing':>9}  {'density r':>9}  {'ring share':>10}  {'mean-density var':>16}"
          f"  goals")
    for row in s:
        pc = int(round(row["scale"].to_value(u.pc)))
        r_min, ring_max = GOALS.get(pc, (None, None))
        goals = ", ".join(g for g in (f"r >= {r_min:g}" if r_min else "",
                                      f"rings <= {100 * ring_max:g} %" if ring_max else "")
                          if g)
        print(f"{pc:6d} pc  {row['density_r']:9.3f}  {100 * row['ring_share']:9.2f}%  "
              f"{row['mean_density_ratio']:15.2f}x  {goals}")
    d = np.asarray(result.profile_map.distances, float)
    print(f"\ndensity r at 300 pc within {_ranges_label()}: "
          f"{_r_by_distance(result.profile_map.av, result.truth, d)} (the ranges' shares "
          f"of the true density's variance {_variance_shares(result.truth, d)})")
    if "fog_index" in s.meta:
        print(f"\nfingers-of-God index {s.meta['fog_index']:.2f} (1: like the truth; "
              f"radial/tangential correlation length {1000 * s.meta['fog_radial_pred']:.0f}/"
              f"{1000 * s.meta['fog_tangential_pred']:.0f} pc predicted, "
              f"{1000 * s.meta['fog_radial_truth']:.0f}/"
              f"{1000 * s.meta['fog_tangential_truth']:.0f} pc true)")
    print("\nmedian relative error of the cumulative A_V: " + ", ".join(
        f"{row['distance'].to_value(u.kpc):g} kpc {100 * row['median_rel_err']:.1f}%"
        for row in m))
    pred, true = _near_sun(result.profile_map.av, result.truth, d)
    print(f"near the Sun, A_V at {_slash(NEAR_KPC)} kpc: median over the cells predicted "
          f"{_slash(np.median(pred, axis=0), '.2f')}, true "
          f"{_slash(np.median(true, axis=0), '.2f')} mag; mean difference "
          f"{_slash(np.mean(pred - true, axis=0), '+.2f')} mag")


def report_blurred_truth(result, widths=BLUR_PC, fractions=BLUR_FRACTIONS):
    """
    Print the structure metrics of the demo's truth blurred along its sightlines.

    Returns the structure tables of the blurs in proportion to the distance, by
    fraction of the distance.
    """
    from cnnext.metrics import blur_along_sightlines, structure_metrics

    truth = np.asarray(result.truth, float)
    d = np.asarray(result.profile_map.distances, float)
    print("reference: the truth blurred along each sightline (no favoured distance)")
    print(f"{'Gaussian':>11}  " + "  ".join(f"{'r, rings at ' + str(pc) + ' pc':>19}"
                                             for pc in (100, 300, 500)))
    references = [(f"{width:d} pc", None, np.full(d.size, width / 1000)) for width in widths]
    references += [(f"{100 * f:.0f} % of d", f, np.maximum(f * d, BLUR_MIN_PC / 1000))
                   for f in fractions]
    tables, by_range = {}, []
    for label, fraction, sigma in references:
        blurred = blur_along_sightlines(truth, d, sigma)
        s = structure_metrics(blurred, truth, d)
        cells = [f"{_at_scale(s, pc)['density_r']:.3f}, "
                 f"{100 * _at_scale(s, pc)['ring_share']:.1f} %" for pc in (100, 300, 500)]
        print(f"{label:>11}  " + "  ".join(f"{c:>19}" for c in cells))
        if fraction is not None:
            tables[fraction] = s
            by_range.append(f"{label} {_r_by_distance(blurred, truth, d)}")
    print(f"density r at 300 pc within {_ranges_label()}: " + "; ".join(by_range))
    return tables


def sky_figures(structure, metrics=None):
    """
    The summary figures of one map (or blurred truth) on one sky: density r and
    ring share at 100/300 pc, fingers-of-God index, cumulative errors (none
    without ``metrics``).
    """
    r100, r300 = _at_scale(structure, 100), _at_scale(structure, 300)
    return {"r100": float(r100["density_r"]), "r300": float(r300["density_r"]),
            "rings100": 100 * float(r100["ring_share"]),
            "fog": float(structure.meta.get("fog_index", np.nan)),
            "cum": [] if metrics is None else
            [100 * float(row["median_rel_err"]) for row in metrics]}


def _summary_line(seed, label, f, width):
    cum = "/".join(f"{v:.1f}" for v in f["cum"]) if f["cum"] else "-"
    fog = f"{f['fog']:.2f}" if np.isfinite(f["fog"]) else "-"
    return (f"{seed:>6}  {label:<{width}}  {f['r100']:.3f}  {f['r300']:.3f}  "
            f"{f['rings100']:5.2f} %  {fog:>4}  {cum}")


def report_skies(skies, labels, distances):
    """
    Print the summary of several mock skies.

    ``skies`` maps each seed to ``{"reference": figures, label: figures, ...}``
    (`sky_figures`); ``labels`` are the maps in order, the
    first being the one the others are compared with.
    """
    blur = "truth, 15 %-of-d blur"
    width = max(len(x) for x in [*labels, blur])
    print(f"{len(skies)} mock skies: density r at 100/300 pc, ring share at 100 pc, "
          f"fingers-of-God index, median relative error (%) of the cumulative at "
          f"{_slash(distances)} kpc")
    print(f"{'seed':>6}  {'map':<{width}}  r100   r300   rings100   FoG  cumulative")
    for seed, figures in skies.items():
        print(_summary_line(seed, blur, figures["reference"], width))
        for label in labels:
            print(_summary_line(seed, label, figures[label], width))
    for label in ["reference", *labels]:
        rows = [skies[s][label] for s in skies]
        mean = {key: float(np.mean([f[key] for f in rows]))
                for key in ("r100", "r300", "rings100", "fog")}
        mean["cum"] = list(np.mean([f["cum"] for f in rows], axis=0)) if rows[0]["cum"] else []
        print(_summary_line("mean", blur if label == "reference" else label, mean, width))
    if len(skies) < 2:
        return

    def paired(label, other):
        """Mean and standard error over the skies of ``label``'s figures minus ``other``'s."""
        out = {}
        keys = ("r100", "r300", "rings100", "cum")
        for key in keys if skies[next(iter(skies))][other]["cum"] else keys[:3]:
            diff = np.array([np.subtract(skies[s][label][key], skies[s][other][key])
                             for s in skies])
            out[key] = (diff.mean(axis=0), diff.std(axis=0, ddof=1) / np.sqrt(len(diff)))
        return out

    def text(diff):
        return "; ".join(f"{name} {diff[key][0]:+.3f} ± {diff[key][1]:.3f}" for key, name in
                         (("r100", "r100"), ("r300", "r300"),
                          ("rings100", "rings100 (points)")))

    print("\nmean ± standard error over the skies of the differences, sky by sky:")
    for label in labels:
        print(f"{label} minus the blurred truth: {text(paired(label, 'reference'))}")
    for label in labels[1:]:
        diff = paired(label, labels[0])
        cum = ", ".join(f"{d:g} kpc {m:+.1f} ± {e:.1f}"
                        for d, m, e in zip(distances, *diff["cum"]))
        print(f"{label} minus {labels[0]}: {text(diff)}; cumulative error (points) {cum}")


def _seeds(value):
    """The ``--seed`` option: one seed or a comma list."""
    seeds = [int(part) for part in str(value).split(",") if part.strip()]
    if not seeds or len(set(seeds)) < len(seeds):
        raise argparse.ArgumentTypeError(f"need distinct seeds, got {value!r}")
    return seeds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", default=None,
                        help="ONNX model (default: the shipped one); may be repeated")
    parser.add_argument("--quick", action="store_true", help="the demo's small region")
    parser.add_argument("--seed", type=_seeds, default=[2022],
                        help="mock sky seed (default: the demo's, 2022), or a comma list: "
                             "each model maps each sky, then a summary over the skies")
    parser.add_argument("--outdir", default=None,
                        help="keep the demo's map, tables and figures here (one "
                             "subdirectory per model when there are several)")
    parser.add_argument("--plots", default=None, metavar="DIR",
                        help="draw DIR/face_on_before_after.png (truth, then each model)")
    parser.add_argument("--neighbours", action="append", default=None, metavar="W",
                        help="also score each map smoothed across neighbouring sightlines "
                             "with weight W in [0, 1] (cnnext.neighbours.smooth_neighbours);"
                             " may be repeated or a comma list")
    parser.add_argument("--neighbour-iterations", type=int, default=1, metavar="N",
                        help="passes of the neighbour smoothing (default 1)")
    args = parser.parse_args(argv)
    weights = _weights(args.neighbours)
    logging.basicConfig(level=logging.WARNING)
    models = args.model or [None]
    labels = [Path(m).name if m else "shipped" for m in models]
    if len(set(labels)) < len(labels):
        labels = [f"{i}: {x}" for i, x in enumerate(labels)]
    skies = {}
    for k, seed in enumerate(args.seed):
        if len(args.seed) > 1:
            print(("\n" + "=" * 78 + "\n\n" if k else "") + f"mock sky, seed {seed}\n")
        results, figures = [], {}
        for i, model in enumerate(models):
            t0 = time.perf_counter()
            outdir = args.outdir
            if outdir is not None and len(models) > 1:
                outdir = Path(outdir) / f"{i}-{Path(model).stem if model else 'shipped'}"
            if outdir is not None and len(args.seed) > 1:
                outdir = Path(outdir) / f"seed-{seed}"
            if i:
                print("\n" + "-" * 78 + "\n")
            result = run(model, quick=args.quick, seed=seed, outdir=outdir)
            report(result)
            print(f"\n{time.perf_counter() - t0:.1f} s")
            if not i:  # the same sky for every model: one reference
                print()
                figures["reference"] = sky_figures(report_blurred_truth(result)[0.15])
            results.append(result)
            figures[labels[i]] = sky_figures(result.structure, result.metrics)
            for w in weights:
                print("\n" + "- " * 39 + "\n")
                smoothed = with_neighbours(result, w, iterations=args.neighbour_iterations)
                report(smoothed)
                figures[f"{labels[i]}, neighbours {w:g}"] = sky_figures(smoothed.structure,
                                                                        smoothed.metrics)
        skies[seed] = figures
        if args.plots is not None and not k:  # the figure of the first sky
            Path(args.plots).mkdir(parents=True, exist_ok=True)
            path = face_on_figure(results, Path(args.plots) / "face_on_before_after.png")
            print(f"\nfigure {path}")
    if len(skies) > 1:
        from cnnext.demo import METRIC_DISTANCES

        print("\n" + "=" * 78 + "\n")
        report_skies(skies, [x for x in skies[args.seed[0]] if x != "reference"],
                     METRIC_DISTANCES)


if __name__ == "__main__":
    main()
