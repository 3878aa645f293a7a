# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
A model on real 2MASS stars: the Perseus field around NGC 1333.

Trains a model for the field with the shipped ``perseus`` preset (or takes
``--model``), maps the real stars of ``../shared/realdata/perseus_2mass.csv``
(read with `cnnext.photometry.TableSource`, through the same pipeline as any
map), and compares it with a colour-excess estimate of each cell's total column
that this script computes from the same stars:

    A_V(CE) = (median H-Ks of A/B-quality stars with errors <= 0.1 mag - 0.105)
              / (A_H/A_V - A_Ks/A_V)

0.105 mag is the intrinsic median H-Ks of unreddened field stars at this latitude,
measured on a real 2MASS control field at b ~ -19 deg (realdata/README.md); the
Galaxy model's own value is printed beside it. The extinction law is the model's.

Goals (issue 10), over the fully covered cells (no `FLAG_PARTIAL`): slope of the
CNN's A_V(2 kpc) against A_V(CE) within 0.8-2.0 (the colour excess of detected
stars under-counts patchy columns, so above 1 can be right), Pearson r >= 0.8;
half-rise distance of the reddened cells (A_V(CE) >= 1 mag) within 220-400 pc
(the clouds lie at ~290-300 pc); A_V(2 kpc) < 0.5 mag where A_V(CE) < 0.3 mag
(no such cell in this field: reported as not applicable), and instead the
least-reddened cells within +-0.5 mag of their colour excess. Each cell also gets a
mock twin (its stars from the Galaxy model behind an even screen of its
colour-excess column at 300 pc, at the depth estimated from its real stars) and a
patchy twin (a log-normal screen with that median column and the spread of ln A_V
that gives the twin the H-Ks dispersion of the cell's bright stars): what the
network reads there tells a network error from a mock-versus-real difference.

One training run of the preset varies with its seed (by about 0.7 in the slope):
``--seeds N`` trains it N times (seeds ``seed, seed + 1, ...``) and measures the
average of the N networks (`cnnext.training.average_models`, through ``cnnext
train --average-with``), a steadier estimate of what the preset gives.

Run::

    python benchmarks/bench_real.py                      # trains the perseus preset
    python benchmarks/bench_real.py --seeds 2            # the average of two seeds
    python benchmarks/bench_real.py --model perseus.onnx --plots out/

Acknowledgement: 2MASS (University of Massachusetts and IPAC/Caltech, NASA, NSF).
"""

import argparse
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata" / "perseus_2mass.csv"
INTRINSIC_HK = 0.105


def colour_excess_av(stars, cells, law):
    """A_V from the median H-Ks colour excess of good stars in each cell."""
    hk = np.asarray(stars["H"], float) - np.asarray(stars["Ks"], float)
    qual = np.asarray(stars["ph_qual"]).astype("U3")
    cc = np.asarray(stars["cc_flg"]).astype("U3")
    good = ((np.char.find("AB", np.array([q[1] for q in qual])) >= 0)
            & (np.char.find("AB", np.array([q[2] for q in qual])) >= 0)
            & (np.array([c[1:] for c in cc]) == "00")
            & (np.asarray(stars["e_H"], float) <= 0.1)
            & (np.asarray(stars["e_Ks"], float) <= 0.1))
    star_cells = np.asarray(stars["cell"])
    med = np.array([np.median(hk[good & (star_cells == c)]) if np.any(
        good & (star_cells == c)) else np.nan for c in cells])
    return (med - INTRINSIC_HK) / (law.ratio("H") - law.ratio("Ks")), med


def training_galaxy(model):
    """The Galaxy model the network was trained on (its metadata's configuration)."""
    from cnnext.synthetic import GalaxyModel

    dataset = (model.metadata.training or {}).get("config", {}).get("dataset", {})
    if dataset.get("source", "galaxy") != "galaxy":
        return GalaxyModel()  # trained on Besançon catalogues: the built-in model
    options = dict(dataset.get("galaxy", {}))
    options.pop("max_distance", None)  # a sampling option, not a model parameter
    return GalaxyModel(**options)


def model_intrinsic_hk(model):
    """
    The median H-Ks of unreddened A/B stars at the field's depth, of the Galaxy
    model the network was trained on.
    """
    from cnnext.synthetic import PhotometricModel, observe

    stars = training_galaxy(model).sample(158.4, -20.5, 1.0, faint_limit=17.0, seed=3)
    obs = observe(stars, 0.0, law=model.law, seed=4,
                  model=PhotometricModel(m10={"J": 16.4, "H": 15.4, "Ks": 14.9}))
    q = np.asarray(obs["ph_qual"]).astype("U3")
    ok = ((np.array([s[1] for s in q]) < "C") & (np.array([s[2] for s in q]) < "C")
          & (np.asarray(obs["e_H"]) <= 0.1) & (np.asarray(obs["e_Ks"]) <= 0.1))
    return float(np.median(np.asarray(obs["H"])[ok] - np.asarray(obs["Ks"])[ok]))


def colour_spread(stars):
    """
    Robust dispersion (1.4826 x MAD, mag) of H-Ks of a cell's bright, well-measured
    stars (Ks < 13.5, errors <= 0.05 mag): intrinsic colours plus the spread of the
    extinction across the cell.
    """
    h, ks = (np.asarray(stars[b], float) for b in ("H", "Ks"))
    ok = ((np.asarray(stars["e_H"], float) <= 0.05) & (np.asarray(stars["e_Ks"], float) <= 0.05)
          & (ks < 13.5))
    hk = (h - ks)[ok]
    return float(1.4826 * np.median(np.abs(hk - np.median(hk)))) if hk.size else np.nan


def mock_twins(model, pm, ce, rows, seed=7, real=None, colour_shift=(0.0, 0.0)):
    """
    The network on mock twins of real cells: the stars of the Galaxy model the
    network was trained on (`training_galaxy`) and the galaxies of each cell
    behind a screen at 300 pc, observed at the depth estimated from the cell's
    real stars.

    The *even* twin has the cell's colour-excess column everywhere. With ``real``
    (the real stars, with their ``cell``), a *patchy* twin is also made: a
    log-normal screen whose median is the colour-excess column and whose spread
    makes the twin's `colour_spread` that of the real cell (the spread of the
    even twin, intrinsic colours and errors, subtracted in quadrature). Its mean
    column, ``median x exp(s**2 / 2)``, is what a perfect network returns.

    ``colour_shift = (dJH, dHKs)`` adds that much to every model star's intrinsic
    J-H and H-Ks (Ks unchanged) before it is reddened: how the network reads a
    population whose colours differ from the Galaxy model's.

    Returns A_V(2 kpc) on the even twins, and with ``real`` also A_V(2 kpc) on the
    patchy twins, their mean columns and their dispersions ``s`` of ln A_V.
    """
    from astropy.table import vstack

    from cnnext.healpix import cell_area, cell_centres
    from cnnext.sightlines import predict_cells
    from cnnext.synthetic import (
        PhotometricModel,
        observe,
        shift_colours,
        unresolved_galaxies,
    )

    gm, area = training_galaxy(model), cell_area(pm.order)
    dhk = model.law.ratio("H") - model.law.ratio("Ks")
    columns = ["l", "b", "distance", "J", "H", "Ks"]
    even, patchy, means, disp = [], [], [], []
    for k, i in enumerate(rows):
        lc, bc = (float(v) for v in cell_centres(pm.cells[i], pm.order))
        stars = vstack([gm.sample(lc, bc, area, faint_limit=18.0, seed=[seed, k])[columns],
                        unresolved_galaxies(lc, bc, area, faint_limit=18.0,
                                            seed=[seed, k, 1])[columns]])
        stars = shift_colours(stars, *colour_shift)
        m10 = pm.observation[i, :3]
        depth = PhotometricModel(m10=dict(zip(("J", "H", "Ks"), m10))) if np.all(
            np.isfinite(m10)) else PhotometricModel()
        behind = np.asarray(stars["distance"]) > 0.3
        obs = observe(stars, np.where(behind, ce[i], 0.0), law=model.law, model=depth,
                      seed=[seed, k, 2])
        obs["cell"] = np.full(len(obs), 64 * k, np.int64)  # apart: no pooling between twins
        even.append(obs)
        if real is not None:
            own = real[np.asarray(real["cell"]) == pm.cells[i]]
            extra = colour_spread(own) ** 2 - colour_spread(obs) ** 2
            sigma_av = np.sqrt(max(extra, 0.0)) / dhk
            s = float(np.sqrt(np.log1p((sigma_av / max(ce[i], 1e-3)) ** 2)))
            z = np.random.default_rng([seed, k, 3]).standard_normal(len(stars))
            screen = np.where(behind, ce[i] * np.exp(s * z), 0.0)
            obs = observe(stars, screen, law=model.law, model=depth, seed=[seed, k, 2])
            obs["cell"] = np.full(len(obs), 64 * k, np.int64)
            patchy.append(obs)
            means.append(ce[i] * np.exp(0.5 * s * s))
            disp.append(s)
    cells = 64 * np.arange(len(rows))
    maps = [predict_cells(vstack(t), cells, model) for t in ([even, patchy] if patchy
                                                              else [even])]
    k2 = int(np.argmin(np.abs(maps[0].distances - 2.0)))
    if real is None:
        return maps[0].av[:, k2]
    return maps[0].av[:, k2], maps[1].av[:, k2], np.array(means), np.array(disp)


def red_tail(stars):
    """Stars with a measured J and Ks and J - Ks > 2 (behind A_V >~ 8 mag, or young)."""
    qual = np.asarray(stars["ph_qual"]).astype("U3")
    measured = np.array([q[0] in "ABC" and q[2] in "ABC" for q in qual], bool)
    jk = np.asarray(stars["J"], float) - np.asarray(stars["Ks"], float)
    return measured & (jk > 2.0)


def without_red_tail(stars, cells, model):
    """CNN A_V(2 kpc) of ``cells`` read without their `red_tail` stars, and their number."""
    from cnnext.sightlines import predict_cells

    red = red_tail(stars)
    pm = predict_cells(stars[~red], cells, model)
    k2 = int(np.argmin(np.abs(pm.distances - 2.0)))
    n_red = np.array([np.sum(red & (np.asarray(stars["cell"]) == c)) for c in cells])
    return pm.av[:, k2], n_red


def half_rise(av, distances):
    """Distance (kpc) where a profile first reaches half its value at 2 kpc."""
    out = np.full(len(av), np.nan)
    k2 = int(np.argmin(np.abs(distances - 2.0)))
    for i, p in enumerate(av):
        half = 0.5 * p[k2]
        if not np.isfinite(half) or half <= 0:
            continue
        j = int(np.argmax(p >= half))
        if j == 0:
            out[i] = distances[0] * half / max(p[0], 1e-9)
        else:
            out[i] = np.interp(half, [p[j - 1], p[j]], [distances[j - 1], distances[j]])
    return out


def plots(folder, pm, ce, av2, full, distances):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cnnext.healpix import cell_centres

    folder.mkdir(parents=True, exist_ok=True)
    l, b = cell_centres(pm.cells, pm.order)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    vmax = np.nanmax(np.concatenate([ce[full], av2[full]]))
    for ax, values, title in ((axes[0], ce, "colour excess A_V (total column)"),
                              (axes[1], av2, "CNN A_V(2 kpc)")):
        sc = ax.scatter(l[full], b[full], c=values[full], s=900, marker="s", vmin=0,
                        vmax=vmax, cmap="magma_r")
        ax.scatter(l[~full], b[~full], c="lightgrey", s=300, marker="s")
        ax.invert_xaxis()
        ax.set(xlabel="l (deg)", ylabel="b (deg)", title=title)
        fig.colorbar(sc, ax=ax, label="A_V (mag)")
    axes[2].scatter(ce[full], av2[full])
    lim = [0, vmax * 1.05]
    axes[2].plot(lim, lim, "k:", label="1:1")
    axes[2].set(xlabel="colour-excess A_V (mag)", ylabel="CNN A_V(2 kpc) (mag)",
                xlim=lim, ylim=lim, title="fully covered cells")
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(folder / "perseus_map.png", dpi=90)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i in np.flatnonzero(full):
        ax.plot(distances, pm.av[i], lw=1)
    ax.axvspan(0.28, 0.31, color="grey", alpha=0.3, label="Perseus clouds (~294 pc)")
    ax.set(xscale="log", xlabel="distance (kpc)", ylabel="A_V (mag)",
           title="CNN profiles of the fully covered cells")
    ax.legend()
    fig.tight_layout()
    fig.savefig(folder / "perseus_profiles.png", dpi=90)
    plt.close("all")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="ONNX model (default: train the perseus preset)")
    parser.add_argument("--workdir", default="bench_real_work",
                        help="work directory of the training (default bench_real_work)")
    parser.add_argument("--data", default=str(DATA), help="the real 2MASS stars (CSV)")
    parser.add_argument("--plots", help="folder for the figures")
    parser.add_argument("--colour-shift", default=None, metavar="DJH,DHK",
                        help="also read the even mock twins with every model star's "
                             "intrinsic J-H and H-Ks shifted by these amounts (mag; "
                             "for instance the offsets bench_faint_end.py prints)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="train the preset with this many seeds and average the "
                             "networks (default 1; ignored with --model)")
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    shift = None
    if args.colour_shift is not None:
        try:
            shift = tuple(float(v) for v in args.colour_shift.split(","))
        except ValueError:
            shift = ()
        if len(shift) != 2:
            parser.error(f"--colour-shift must be two numbers DJH,DHK, got "
                         f"{args.colour_shift!r}")

    from cnnext.mapfile import FLAG_FEW_STARS, FLAG_PARTIAL
    from cnnext.model import CNNModel
    from cnnext.photometry import TableSource
    from cnnext.sightlines import predict_cells

    model_path = args.model
    if model_path is None:
        from cnnext.training.presets import load_preset
        from cnnext.training.train import train_model

        t0 = time.perf_counter()
        preset = load_preset("perseus")
        members = []
        for k in range(1, args.seeds):  # the other seeds first, each in its own folder
            workdir = Path(args.workdir) / f"seed-{preset.seed + k}"
            members.append(workdir / "member.onnx")
            train_model(preset.replace(seed=preset.seed + k), workdir, members[-1], n_jobs=2)
        model_path = Path(args.workdir) / "cnnext-perseus.onnx"
        train_model(preset, args.workdir, model_path, n_jobs=2, average_with=members)
        print(f"# trained the perseus preset ({args.seeds} seed(s), averaged) in "
              f"{time.perf_counter() - t0:.0f} s")
    model = CNNModel(model_path, providers="cpu")
    source = TableSource(args.data)
    stars = source.stars
    from cnnext.healpix import lonlat_to_cells

    stars["cell"] = lonlat_to_cells(stars["l"], stars["b"], model.order)
    cells = np.unique(stars["cell"])
    pm = predict_cells(stars, cells, model, source_key=source.key)
    full = (pm.flags & (FLAG_PARTIAL | FLAG_FEW_STARS)) == 0
    ce, med_hk = colour_excess_av(stars, pm.cells, model.law)
    d = pm.distances
    k2 = int(np.argmin(np.abs(d - 2.0)))
    av2 = pm.av[:, k2].astype(float)
    x, y = ce[full], av2[full]
    slope, intercept = np.polyfit(x, y, 1)
    origin_slope = float(np.sum(x * y) / np.sum(x * x))
    r = float(np.corrcoef(x, y)[0, 1])
    reddened = full & (ce >= 1.0)
    hr = half_rise(pm.av[reddened], d)
    least = np.flatnonzero(full)[np.argsort(ce[full])[:3]]

    print(f"# {len(stars)} stars, {len(cells)} cells at order {model.order}, "
          f"{int(full.sum())} fully covered; model {Path(model_path).name} "
          f"(descriptors: {list(model.descriptors) or 'none'})")
    print(f"# intrinsic H-Ks: control field {INTRINSIC_HK} mag (used); Galaxy model "
          f"{model_intrinsic_hk(model):.3f} mag")
    obs = np.nanmedian(pm.observation[full], axis=0)
    print("# depth estimated from the stars (median over the cells): "
          + ", ".join(f"{n} {v:.2f}" for n, v in zip(
              ("m10_J", "m10_H", "m10_Ks", "peak_J", "peak_H", "peak_Ks"), obs)))
    order = np.flatnonzero(full)[np.argsort(ce[full])]
    even, patchy, patchy_mean, patchy_s = mock_twins(model, pm, ce, order, real=stars)
    twin, ptwin = dict(zip(order, even)), dict(zip(order, patchy))
    pmean, ps = dict(zip(order, patchy_mean)), dict(zip(order, patchy_s))
    no_tail, n_red = without_red_tail(stars, pm.cells, model)
    print("| cell | l | b | n_stars | A_V(CE) | CNN A_V(0.3 kpc) | CNN A_V(1 kpc) "
          "| CNN A_V(2 kpc) | sigma(2 kpc) | half-rise (pc) | CNN on the mock twin "
          "| patchy twin: s, mean column, CNN | stars J-Ks > 2 "
          "| CNN A_V(2 kpc) without them |")
    print("|---" * 14 + "|")
    from cnnext.healpix import cell_centres

    lc, bc = cell_centres(pm.cells, pm.order)
    k03 = int(np.argmin(np.abs(d - 0.3)))
    k1 = int(np.argmin(np.abs(d - 1.0)))
    hr_all = half_rise(pm.av, d)
    for i in order:
        print(f"| {pm.cells[i]} | {lc[i]:.2f} | {bc[i]:.2f} | {pm.n_stars[i]} | "
              f"{ce[i]:.2f} | {pm.av[i, k03]:.2f} | {pm.av[i, k1]:.2f} | {av2[i]:.2f} | "
              f"{pm.sigma[i, k2]:.2f} | {1000 * hr_all[i]:.0f} | {twin[i]:.2f} | "
              f"{ps[i]:.2f}, {pmean[i]:.2f}, {ptwin[i]:.2f} | "
              f"{n_red[i]} | {no_tail[i]:.2f} |")
    twin_err = np.array([twin[i] - ce[i] for i in order])
    print(f"# mock twins (the cell's stars from the Galaxy model behind an even screen of "
          f"its A_V(CE) at 300 pc, at its estimated depth): CNN minus A_V(CE) median "
          f"{np.median(twin_err):+.2f} mag, range {twin_err.min():+.2f} to "
          f"{twin_err.max():+.2f}; on the real cells median "
          f"{np.median(av2[order] - ce[order]):+.2f} mag")
    if shift is not None:
        shifted = mock_twins(model, pm, ce, order, colour_shift=shift) - ce[order]
        print(f"# even twins with the model stars' intrinsic J-H {shift[0]:+g} and H-Ks "
              f"{shift[1]:+g} mag: CNN minus A_V(CE) median {np.median(shifted):+.2f} mag, "
              f"range {shifted.min():+.2f} to {shifted.max():+.2f}")
    perr = np.array([ptwin[i] - pmean[i] for i in order])
    print(f"# patchy twins (a log-normal screen with the cell's median column and its "
          f"H-Ks spread of bright stars): CNN minus their mean column median "
          f"{np.median(perr):+.2f} mag, range {perr.min():+.2f} to {perr.max():+.2f}; "
          f"real cells minus the same mean column median "
          f"{np.median(av2[order] - patchy_mean):+.2f} mag")
    print(f"# without the stars redder than J-Ks 2 ({int(n_red[order].sum())} of "
          f"{int(pm.n_stars[order].sum())} counted): CNN minus A_V(CE) median "
          f"{np.median(no_tail[order] - ce[order]):+.2f} mag, slope "
          f"{np.polyfit(x, no_tail[full], 1)[0]:.2f} (a diagnostic, not a goal)")

    def verdict(ok):
        return "met" if ok else "NOT met"

    print()
    print(f"slope of CNN A_V(2 kpc) vs A_V(CE): {slope:.2f} (intercept {intercept:+.2f} mag;"
          f" through the origin {origin_slope:.2f}) — goal 0.8-2.0: "
          f"{verdict(0.8 <= slope <= 2.0)}")
    print(f"Pearson r: {r:.2f} — goal >= 0.8: {verdict(r >= 0.8)}")
    med_hr = float(np.nanmedian(hr)) * 1000 if hr.size else float("nan")
    print(f"half-rise distance of the {int(reddened.sum())} reddened cells (A_V(CE) >= 1): "
          f"median {med_hr:.0f} pc (range {np.nanmin(hr) * 1000:.0f}-"
          f"{np.nanmax(hr) * 1000:.0f}) — goal 220-400 pc: {verdict(220 <= med_hr <= 400)}")
    empty = full & (ce < 0.3)
    if empty.any():
        print(f"A_V(2 kpc) where A_V(CE) < 0.3: max {av2[empty].max():.2f} — goal < 0.5: "
              f"{verdict(av2[empty].max() < 0.5)}")
    else:
        print("A_V(2 kpc) < 0.5 where A_V(CE) < 0.3: not applicable (no such cell here)")
    diffs = av2[least] - ce[least]
    print(f"least-reddened cells: A_V(CE) {np.round(ce[least], 2).tolist()}, CNN "
          f"{np.round(av2[least], 2).tolist()} (differences "
          f"{np.round(diffs, 2).tolist()}) — goal within ±0.5: "
          f"{verdict(np.all(np.abs(diffs) <= 0.5))}")
    if args.plots:
        plots(Path(args.plots), pm, ce, av2, full, d)
        print(f"figures in {args.plots}/perseus_map.png, perseus_profiles.png")


if __name__ == "__main__":
    main()
