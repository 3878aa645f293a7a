# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The faint end of the real sky against the Galaxy model: colours per magnitude bin.

Real 2MASS stars of the least-reddened fully covered cells of the Perseus field
(``../shared/realdata/perseus_2mass.csv``) against the built-in Galaxy model for
the same cells, observed by the same mock at the depth estimated from the real
stars (`cnnext.observation`) and reddened by the cells' colour-excess column
(a screen at 300 pc, in front of nearly all the stars that 2MASS sees at
b = -20 deg), with and without the unresolved galaxies of
`cnnext.synthetic.unresolved_galaxies`. Both go through the default quality cuts.
Printed per Ks bin: star counts per deg², median J-Ks, H-Ks and J-H; then the
distribution of J-H of the stars at Ks 11-14 (0.1 mag bins, per deg²), where
both are complete and the stars are mostly dwarfs of the thin and thick discs.

Nothing here is fitted: the comparison shows which physical ingredient the mock
lacks (issue 10, item 4).

Run::

    python benchmarks/bench_faint_end.py [--extra-av MAG] [--galaxy JSON]

``--extra-av MAG`` adds that much to the screen of every cell: how much more
dust than the colour excess would the real colours need? ``--galaxy`` takes
`~cnnext.synthetic.GalaxyModel` keyword arguments as JSON, to see how a change
of the model moves its colours, e.g. a thick disc half as dense:
``--galaxy '{"population_overrides": {"thick": {"rho0": 6.7e-4}}}'``.
"""

import argparse
import json
from pathlib import Path

import numpy as np

BINS = np.arange(10.0, 16.01, 0.5)
#: J-H bins of the colour distribution at Ks 11-14
JH_BINS = np.round(np.arange(0.0, 1.31, 0.1), 2)
JH_KS = (11.0, 14.0)


def _colours(stars):
    """Ks, J-Ks, H-Ks and J-H of the stars passing the default cuts in all bands."""
    from cnnext.quality import QualityCuts

    masks = QualityCuts().band_masks(stars)
    ok = masks["J"] & masks["H"] & masks["Ks"]
    j, h, ks = (np.asarray(stars[b], float)[ok] for b in ("J", "H", "Ks"))
    return ks, j - ks, h - ks, j - h


def binned(stars, area):
    """Counts per deg² and median J-Ks, H-Ks, J-H per Ks bin of stars passing the cuts."""
    ks, *colours = _colours(stars)
    k = np.digitize(ks, BINS) - 1
    rows = []
    for i in range(len(BINS) - 1):
        sel = k == i
        rows.append((sel.sum() / area,
                     *(np.median(c[sel]) if sel.any() else np.nan for c in colours)))
    return np.array(rows)


def jh_distribution(stars, area):
    """Stars per deg² in each `JH_BINS` bin of J-H, at Ks in `JH_KS`."""
    ks, _, _, jh = _colours(stars)
    sel = (ks >= JH_KS[0]) & (ks < JH_KS[1])
    return np.histogram(jh[sel], JH_BINS)[0] / area


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="the real 2MASS stars (CSV; default "
                        "that of bench_real.py)")
    parser.add_argument("--cells", type=int, default=4,
                        help="how many of the least-reddened full cells (default 4)")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--extra-av", type=float, default=0.0, metavar="MAG",
                        help="add this much to each cell's colour-excess column (mag A_V): "
                             "how much more dust the real colours would need")
    parser.add_argument("--galaxy", default="{}", metavar="JSON",
                        help="GalaxyModel keyword arguments (JSON) of the model stars")
    args = parser.parse_args()
    try:
        galaxy_options = json.loads(args.galaxy)
    except json.JSONDecodeError as exc:
        parser.error(f"--galaxy is not valid JSON: {exc}")
    if not isinstance(galaxy_options, dict):
        parser.error("--galaxy must be a JSON object of GalaxyModel keyword arguments")

    from astropy.table import vstack

    from cnnext.extinction import ExtinctionLaw
    from cnnext.healpix import cell_area, cell_centres, lonlat_to_cells
    from cnnext.observation import estimate_cells
    from cnnext.photometry import TableSource
    from cnnext.sightlines import partly_covered
    from cnnext.synthetic import GalaxyModel, PhotometricModel, observe, unresolved_galaxies

    sys_path = Path(__file__).resolve().parent
    import sys

    sys.path.insert(0, str(sys_path))
    from bench_real import DATA, colour_excess_av

    order = 7
    law = ExtinctionLaw("G23", 3.1)
    stars = TableSource(args.data or DATA).stars
    stars["cell"] = lonlat_to_cells(stars["l"], stars["b"], order)
    cells = np.unique(stars["cell"])
    full = cells[~partly_covered(stars, cells, order)]
    ce, _ = colour_excess_av(stars, full, law)
    pick = full[np.argsort(ce)[:args.cells]]
    ce_pick = np.sort(ce)[:args.cells]
    av_pick = ce_pick + args.extra_av
    depth, _ = estimate_cells(stars, pick, order)
    m10 = np.nanmedian(depth[:, :3], axis=0)
    real = stars[np.isin(stars["cell"], pick)]
    area = cell_area(order) * len(pick)
    print(f"# {len(real)} real stars in {len(pick)} least-reddened cells "
          f"(A_V(CE) {np.round(ce_pick, 2).tolist()} mag, screens {args.extra_av:+g} mag "
          f"more); estimated S/N-10 depth "
          f"J {m10[0]:.2f} H {m10[1]:.2f} Ks {m10[2]:.2f}")
    pm = PhotometricModel(m10=dict(zip(("J", "H", "Ks"), m10)))
    gm = GalaxyModel(**galaxy_options)
    mocks = {"model stars": [], "model stars + galaxies": []}
    for i, (cell, av) in enumerate(zip(pick, av_pick)):
        lc, bc = (float(v) for v in cell_centres(cell, order))
        intrinsic = gm.sample(lc, bc, cell_area(order), faint_limit=18.0, seed=[args.seed, i])
        screen = np.where(np.asarray(intrinsic["distance"]) > 0.3, av, 0.0)
        mocks["model stars"].append(observe(intrinsic, screen, law=law, model=pm,
                                            seed=[args.seed, i, 1]))
        gal = unresolved_galaxies(lc, bc, cell_area(order), faint_limit=18.0,
                                  seed=[args.seed, i, 2])
        mocks["model stars + galaxies"].append(vstack([
            mocks["model stars"][-1],
            observe(gal, np.full(len(gal), av), law=law, model=pm, seed=[args.seed, i, 3])]))
    results = {"real 2MASS": binned(real, area)}
    jh = {"real 2MASS": jh_distribution(real, area)}
    for name, parts in mocks.items():
        results[name] = binned(vstack(parts), area)
        jh[name] = jh_distribution(vstack(parts), area)
    names = list(results)
    print("| Ks | " + " | ".join(f"{n}: N/deg², J-Ks, H-Ks, J-H" for n in names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for i in range(len(BINS) - 1):
        cells_txt = [f"{results[n][i, 0]:.0f}, {results[n][i, 1]:.2f}, "
                     f"{results[n][i, 2]:.2f}, {results[n][i, 3]:.2f}" for n in names]
        print(f"| {BINS[i]:.1f}-{BINS[i + 1]:.1f} | " + " | ".join(cells_txt) + " |")
    print(f"\n# J-H distribution at Ks {JH_KS[0]:g}-{JH_KS[1]:g}, stars per deg²")
    print("| J-H | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for i in range(len(JH_BINS) - 1):
        print(f"| {JH_BINS[i]:.1f}-{JH_BINS[i + 1]:.1f} | "
              + " | ".join(f"{jh[n][i]:.0f}" for n in names) + " |")
    for n in names:
        print(f"# {n}: {jh[n].sum():.0f} per deg² at Ks {JH_KS[0]:g}-{JH_KS[1]:g}, "
              f"{100 * jh[n][JH_BINS[:-1] < 0.4].sum() / jh[n].sum():.0f} % with J-H < 0.4, "
              f"{100 * jh[n][JH_BINS[:-1] >= 0.7].sum() / jh[n].sum():.0f} % with J-H >= 0.7")
    print()
    for name in names:
        r = results[name]
        faint = BINS[:-1] >= 14.5
        w = r[faint, 0]
        print(f"# {name}: Ks >= 14.5: {w.sum() * 0.5:.0f} per deg², count-weighted "
              f"median J-Ks {np.nansum(r[faint, 1] * w) / w.sum():.2f}, "
              f"H-Ks {np.nansum(r[faint, 2] * w) / w.sum():.2f}")


if __name__ == "__main__":
    main()
