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
Printed per Ks bin: star counts per deg², median J-Ks and H-Ks.

Nothing here is fitted: the comparison shows which physical ingredient the mock
lacks (issue 10, item 4).

Run::

    python benchmarks/bench_faint_end.py
"""

import argparse
from pathlib import Path

import numpy as np

BINS = np.arange(10.0, 16.01, 0.5)


def binned(stars, area):
    """Counts per deg² and median colours per Ks bin of stars passing the cuts."""
    from cnnext.quality import QualityCuts

    masks = QualityCuts().band_masks(stars)
    ok = masks["J"] & masks["H"] & masks["Ks"]
    ks = np.asarray(stars["Ks"], float)[ok]
    jk = np.asarray(stars["J"], float)[ok] - ks
    hk = np.asarray(stars["H"], float)[ok] - ks
    k = np.digitize(ks, BINS) - 1
    rows = []
    for i in range(len(BINS) - 1):
        sel = k == i
        rows.append((sel.sum() / area, np.median(jk[sel]) if sel.any() else np.nan,
                     np.median(hk[sel]) if sel.any() else np.nan))
    return np.array(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="the real 2MASS stars (CSV; default "
                        "that of bench_real.py)")
    parser.add_argument("--cells", type=int, default=4,
                        help="how many of the least-reddened full cells (default 4)")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()

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
    av_pick = np.sort(ce)[:args.cells]
    depth, _ = estimate_cells(stars, pick, order)
    m10 = np.nanmedian(depth[:, :3], axis=0)
    real = stars[np.isin(stars["cell"], pick)]
    area = cell_area(order) * len(pick)
    print(f"# {len(real)} real stars in {len(pick)} least-reddened cells "
          f"(A_V(CE) {np.round(av_pick, 2).tolist()} mag); estimated S/N-10 depth "
          f"J {m10[0]:.2f} H {m10[1]:.2f} Ks {m10[2]:.2f}")
    pm = PhotometricModel(m10=dict(zip(("J", "H", "Ks"), m10)))
    gm = GalaxyModel()
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
    for name, parts in mocks.items():
        results[name] = binned(vstack(parts), area)
    names = list(results)
    print("| Ks | " + " | ".join(f"{n}: N/deg², J-Ks, H-Ks" for n in names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for i in range(len(BINS) - 1):
        cells_txt = [f"{results[n][i, 0]:.0f}, {results[n][i, 1]:.2f}, "
                     f"{results[n][i, 2]:.2f}" for n in names]
        print(f"| {BINS[i]:.1f}-{BINS[i + 1]:.1f} | " + " | ".join(cells_txt) + " |")
    for name in names:
        r = results[name]
        faint = BINS[:-1] >= 14.5
        w = r[faint, 0]
        print(f"# {name}: Ks >= 14.5: {w.sum() * 0.5:.0f} per deg², count-weighted "
              f"median J-Ks {np.nansum(r[faint, 1] * w) / w.sum():.2f}, "
              f"H-Ks {np.nansum(r[faint, 2] * w) / w.sum():.2f}")


if __name__ == "__main__":
    main()
