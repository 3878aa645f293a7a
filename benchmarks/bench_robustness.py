# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Robustness of models to how a sky is observed: held-out synthetic sightlines.

Intrinsic stars of held-out sightlines (the carina preset's evaluation sightlines
inside its region, never trained on) are reddened by random profiles and then
observed under a grid of conditions — several of them in forms the training never
used: another error-law shape, erfc and hard completeness cuts, depth offsets from
-1.0 to +0.8 mag, flag rates 0-10 %, star counts x0.5 and x2, patchy screens, dense
cores (a share of the stars behind 4-20 times the cell's mean column), young
stars with infrared excess mixed in (5 % of the sources). The
observation here is written independently of `cnnext.synthetic.observe_many`
(star tables with 2MASS flags), and the tables go through the very pipeline real
photometry takes (`cnnext.sightlines.predict_cells`: quality cuts, observation
estimate, CMDs, network). Each model is scored with `cnnext.metrics.error_metrics`.

Goal (issue 10): median relative error <= 15 % at 2, 4 and 6 kpc and 68 %
coverage within 60-76 % in every row.

The true profiles are the same in every row, so the density r a map of them can
reach is printed once, before the table: the truth blurred along each sightline
by 10, 15 and 20 % of the distance (`cnnext.metrics.blur_along_sightlines`, the
resolution of photometric distances), scored like the models at 100 and 300 pc
(issue 14 asks >= 0.35 and >= 0.65 of the models).

Run::

    python benchmarks/bench_robustness.py --model OLD.onnx --model NEW.onnx
    python benchmarks/bench_robustness.py --rows 0 --at 1,2,4,6,8 --seed 8 --profiles 160

(no ``--model``: the shipped model). About a minute per model on one CPU core.
``--at`` prints the errors and biases at other distances (1 kpc: how a model reads
near dust, which the colours of its stars barely show); ``--seed`` draws another
set of profiles and stars, ``--profiles`` more of them (the density r of 240
profiles moves by a few hundredths from one draw to the next).
"""

import argparse
import time

import numpy as np
from astropy.table import Table, vstack
from scipy.special import erfc

ROWS = [
    # name, keyword changes of the observation
    ("nominal (the default mock)", {}),
    ("depth -1.0 mag", {"depth": -1.0}),
    ("depth -0.5 mag", {"depth": -0.5}),
    ("depth +0.5 mag (off-plane 2MASS)", {"depth": 0.5}),
    ("depth +0.8 mag", {"depth": 0.8}),
    ("erfc completeness", {"completeness": "erfc"}),
    ("hard completeness cut", {"completeness": "hard"}),
    ("exponential error law", {"error_law": "exp"}),
    ("flag rate 0 %", {"flag_rate": 0.0}),
    ("flag rate 10 %", {"flag_rate": 0.10}),
    ("star counts x0.5", {"density": 0.5}),
    ("star counts x2", {"density": 2.0}),
    ("patchy screen (s = 0.8)", {"patchy": 0.8}),
    ("depth +0.5, patchy, erfc", {"depth": 0.5, "patchy": 0.8, "completeness": "erfc"}),
    ("dense cores (10 % behind 4-20x)", {"patchy": 0.5, "cores": 0.10}),
    ("young stars (5 % of the sources)", {"young": 0.05}),
]
NOMINAL_M10 = {"J": 15.8, "H": 15.1, "Ks": 14.3}
BANDS = ("J", "H", "Ks")


def observe_table(stars, av, rng, *, depth=0.0, completeness="logistic", width=0.2,
                  m50_offset=0.9, error_law="2mass", floor=0.025, flag_rate=0.02,
                  law=None):
    """Observe intrinsic ``stars`` behind per-star ``av`` as a 2MASS table would."""
    n = len(stars)
    out = Table({"l": np.asarray(stars["l"], float), "b": np.asarray(stars["b"], float)})
    detected_any = np.zeros(n, bool)
    quals, flags = [], []
    for band in BANDS:
        m10 = NOMINAL_M10[band] + depth
        true = np.asarray(stars[band], float) + law.coefficients[band] * av
        if error_law == "2mass":
            x = 10 ** (0.4 * (true - m10))
            sig = np.sqrt((0.10857 * x) ** 2 + 0.03 ** 2 * x + floor ** 2)
        else:  # an exponential law, as fits of some survey pipelines have it
            sig = floor + 0.08 * np.exp(1.05 * (true - m10))
        m50 = m10 + m50_offset
        if completeness == "logistic":
            p = 1.0 / (1.0 + np.exp(np.clip((true - m50) / width, -50, 50)))
        elif completeness == "erfc":
            p = 0.5 * erfc((true - m50) / (np.sqrt(2) * width))
        else:
            p = (true < m50).astype(float)
        det = rng.random(n) < p
        obs = true + sig * rng.standard_normal(n)
        rep = np.sqrt(sig ** 2 + 0.012 ** 2)
        snr = 1.0857 / np.maximum(sig, 1e-6)
        letter = np.where((snr > 10) & (rep < 0.10857), "A",
                          np.where((snr > 7) & (rep < 0.1551), "B",
                                   np.where((snr > 5) & (rep < 0.21714), "C", "D")))
        out[band] = np.where(det, obs, m50)
        out[f"e_{band}"] = np.where(det, rep, np.nan)
        quals.append(np.where(det, letter, "U"))
        flags.append(np.where(det & (rng.random(n) < flag_rate), "c", "0"))
        detected_any |= det
    out["ph_qual"] = np.char.add(np.char.add(quals[0], quals[1]), quals[2])
    out["cc_flg"] = np.char.add(np.char.add(flags[0], flags[1]), flags[2])
    return out, detected_any


def young_sources(n, like, rng, *, law, **observation):
    """
    ``n`` young stars with infrared excess, observed like the table ``like``: on a
    T Tauri-like locus J-H = 0.6 (H-Ks) + 0.5 with H-Ks 0.3-1.2, behind 0-20 mag
    of their own cloud, Ks 9-14.5 (a locus and ranges other than the training's).
    """
    hk = rng.uniform(0.3, 1.2, n)
    ks = rng.uniform(9.0, 14.5, n)
    intrinsic = Table({"l": np.full(n, np.nanmedian(like["l"])),
                       "b": np.full(n, np.nanmedian(like["b"])),
                       "Ks": ks, "H": ks + hk, "J": ks + hk + 0.6 * hk + 0.5})
    t, det = observe_table(intrinsic, rng.uniform(0.0, 20.0, n), rng, law=law,
                           **observation)
    return t[det]


def make_sky(n_profiles, seed):
    """Intrinsic catalogues and profiles of the held-out sightlines."""
    from cnnext.healpix import cell_area, cell_centres, lonlat_to_cells
    from cnnext.synthetic import GalaxyModel, random_profiles
    from cnnext.training.presets import load_preset

    config = load_preset("carina")
    order = config.region.healpix_order
    gm = GalaxyModel()
    sky = []
    for i, (l, b) in enumerate(config.evaluation.inside):
        lc, bc = (float(v) for v in cell_centres(lonlat_to_cells(l, b, order), order))
        # twice the cell area, to allow the x2 row; other rows thin it
        stars = gm.sample(lc, bc, 2 * cell_area(order), faint_limit=17.5, seed=[seed, i])
        prof = random_profiles(n_profiles, l=lc, b=bc, seed=[seed, i, 1], max_distance=16.0)
        sky.append((stars, prof))
    return sky, config.dataset.distances


def run_row(model, sky, distances, changes, seed):
    """Score one model under one set of observing conditions."""
    from cnnext.metrics import (
        REPORT_DISTANCES,
        density_correlation,
        error_metrics,
        relative_error,
        ring_share,
    )
    from cnnext.sightlines import predict_cells

    changes = dict(changes)
    density = changes.pop("density", 1.0)
    patchy = changes.pop("patchy", 0.0)
    cores = changes.pop("cores", 0.0)
    young = changes.pop("young", 0.0)
    rng = np.random.default_rng(seed)
    preds, sigmas, truths = [], [], []
    for stars, prof in sky:
        n_prof = len(prof)
        av_all = prof.at(np.asarray(stars["distance"], float))
        tables = []
        for k in range(n_prof):
            keep = rng.random(len(stars)) < 0.5 * density
            av = av_all[k, keep].copy()
            if patchy or cores:
                factor = np.exp(patchy * rng.standard_normal(av.size) - 0.5 * patchy ** 2)
                # dense cores: columns log-uniform in 4-20x the mean (mean 16 / ln 5)
                core = rng.random(av.size) < cores
                factor[core] = np.exp(rng.uniform(np.log(4.0), np.log(20.0), core.sum()))
                av *= factor / (1.0 - cores + cores * 16.0 / np.log(5.0))
            t, det = observe_table(stars[keep], av, rng, law=model.law, **changes)
            t = t[det]
            if young:
                t = vstack([t, young_sources(rng.binomial(len(t), young), t, rng,
                                             law=model.law, **changes)])
            # one fake cell per profile, far apart so that no pooling mixes them
            t["cell"] = np.full(len(t), 64 * k, np.int64)
            tables.append(t)
        allstars = vstack(tables)
        pm = predict_cells(allstars, 64 * np.arange(n_prof), model)
        preds.append(pm.av)
        sigmas.append(pm.sigma)
        truths.append(prof.nodes(distances))
    pred, truth = np.concatenate(preds), np.concatenate(truths)
    t = error_metrics(pred, np.concatenate(sigmas), truth, distances, at=REPORT_DISTANCES)
    out = {float(d): (float(r), float(c)) for d, r, c in
           zip(REPORT_DISTANCES, t["median_rel_err"], t["coverage68"])}
    ok = np.all(np.isfinite(pred), axis=1)
    nodes = [int(np.argmin(np.abs(distances - d))) for d in REPORT_DISTANCES]
    out["bias"] = {float(d): float(np.median(relative_error(pred[ok, k], truth[ok, k],
                                                            signed=True)))
                   for d, k in zip(REPORT_DISTANCES, nodes)}
    out["structure"] = {scale: (float(density_correlation(pred[ok], truth[ok], distances,
                                                          scale=scale)),
                                float(ring_share(pred[ok], truth[ok], distances,
                                                 scale=scale)))
                        for scale in (0.1, 0.3)}
    return out


def resolution_reference(sky, distances, fractions=(0.10, 0.15, 0.20)):
    """Density r at 100/300 pc of the grid's truth blurred by fractions of d."""
    from cnnext.metrics import blur_along_sightlines, density_correlation

    truth = np.concatenate([prof.nodes(distances) for _, prof in sky])
    d = np.asarray(distances, float)
    out = []
    for f in fractions:
        # 20 pc at least, as in bench_structure.py
        blurred = blur_along_sightlines(truth, d, np.maximum(f * d, 0.02))
        r = [density_correlation(blurred, truth, d, scale=s) for s in (0.1, 0.3)]
        out.append(f"{100 * f:.0f} % of d {r[0]:.2f}/{r[1]:.2f}")
    return "; ".join(out)


def _slash(distances):
    return "/".join(f"{d:g}" for d in distances)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", help="ONNX model (repeatable)")
    parser.add_argument("--profiles", type=int, default=40,
                        help="profiles per held-out sightline (default 40)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rows", default=None,
                        help="comma-separated row numbers to run (default all)")
    parser.add_argument("--decimals", type=int, default=0,
                        help="decimals of the relative errors (default 0: whole percent)")
    parser.add_argument("--at", default="2,4,6",
                        help="distances (kpc) of the printed errors and biases, a comma list "
                             "out of 1,2,4,6,8 (default 2,4,6, the goal's; the goal is "
                             "checked at 2, 4 and 6 kpc whatever is printed)")
    args = parser.parse_args()
    from cnnext.model import CNNModel

    models = [CNNModel(p, providers="cpu") for p in (args.model or [None])]
    try:
        numbers = (range(len(ROWS)) if args.rows is None
                   else [int(i) for i in args.rows.split(",")])
    except ValueError:
        parser.error(f"--rows takes comma-separated row numbers, got {args.rows!r}")
    if args.decimals < 0:
        parser.error(f"--decimals must be >= 0, got {args.decimals}")
    try:
        at = [float(x) for x in args.at.split(",")]
    except ValueError:
        at = []
    from cnnext.metrics import REPORT_DISTANCES

    if not at or any(d not in REPORT_DISTANCES for d in at):
        parser.error(f"--at takes a comma list out of "
                     f"{','.join(f'{d:g}' for d in REPORT_DISTANCES)}, got {args.at!r}")
    if any(not 0 <= i < len(ROWS) for i in numbers):
        parser.error(f"--rows takes row numbers 0-{len(ROWS) - 1}, got {args.rows!r}")
    t0 = time.perf_counter()
    sky, distances = make_sky(args.profiles, args.seed)
    print(f"# {len(sky)} held-out sightlines x {args.profiles} profiles "
          f"(sky drawn in {time.perf_counter() - t0:.0f} s); median relative error at "
          f"{_slash(at)} kpc, 68% coverage (mean over 2/4/6 kpc); goal <= 15 % at 2/4/6 kpc, "
          f"60-76 %; the bias (median signed relative error, + reads too high) at "
          f"{_slash(at)} kpc; then "
          f"density r at 100/300 pc and ring share at 100 pc (issue 14: r >= 0.35/0.65, "
          f"rings <= 3 %)")
    print(f"# reference, the truth blurred along each sightline (density r at 100/300 pc): "
          f"{resolution_reference(sky, distances)}")
    header = "| conditions | " + " | ".join(
        f"{m.path.name} ({'obs' if m.descriptors else 'CMD only'})" for m in models) + " |"
    print(header)
    print("|---" * (len(models) + 1) + "|")
    for i in numbers:  # each row's seed follows its number: a row run alone reads the same
        name, changes = ROWS[i]
        cells = []
        for m in models:
            res = run_row(m, sky, distances, changes, args.seed + 100 + i)
            err = [res[d][0] for d in (2.0, 4.0, 6.0)]
            cov = np.mean([res[d][1] for d in (2.0, 4.0, 6.0)])
            ok = max(err) <= 0.15 and 0.60 <= cov <= 0.76
            (r1, ring1), (r3, _) = res["structure"][0.1], res["structure"][0.3]
            bias = "/".join(f"{100 * res['bias'][d]:+.0f}" for d in at)
            errors = "/".join(f"{100 * res[d][0]:.{args.decimals}f}" for d in at)
            cells.append(f"{errors} %, cov {100 * cov:.0f} %"
                         f"{' ✓' if ok else ''}; bias {bias} %; r {r1:.2f}/{r3:.2f}, rings "
                         f"{100 * ring1:.1f} %")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
