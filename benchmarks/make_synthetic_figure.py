# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Make the figure of docs/synthetic.rst: a synthetic CMD next to its intrinsic version.

One 30' cell (HEALPix order 7) at (l, b) = (280°, 0°): the intrinsic stars of the
built-in Galaxy model down to Ks = 15.5, the same stars observed through one random
extinction profile (the 64x64 Ks vs J-Ks channel the network sees), and that profile.

Run::

    python benchmarks/make_synthetic_figure.py [-o docs/_static/synthetic_cmd.png]
"""

import argparse
from pathlib import Path

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("-o", "--output", default=str(Path(__file__).resolve().parents[1]
                                                      / "docs" / "_static"
                                                      / "synthetic_cmd.png"))
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cnnext import CMDSpec
    from cnnext.healpix import cell_area
    from cnnext.synthetic import GalaxyModel, observe_many, random_profiles

    spec = CMDSpec()
    ch = spec.channels[0]
    stars = GalaxyModel().sample(280.0, 0.0, cell_area(7), faint_limit=15.5, seed=args.seed)
    profiles = random_profiles(200, l=280.0, b=0.0, seed=args.seed)
    # a typical plane sightline: the profile whose A_V(10 kpc) is nearest 8 mag
    k = int(np.argmin(np.abs(profiles.total(10.0) - 8.0)))
    profile = profiles[k]
    cmds, n_obs = observe_many(stars, profile, seed=args.seed + 1, spec=spec)

    fig, axes = plt.subplots(1, 3, figsize=(13, 4.6), gridspec_kw={"width_ratios": [1, 1, 1.1]})
    extent = (*ch.colour_range, ch.mag_range[1], ch.mag_range[0])
    intrinsic, _, _ = np.histogram2d(stars["Ks"], stars["J"] - stars["Ks"],
                                     bins=(spec.n_mag, spec.n_colour),
                                     range=(ch.mag_range, ch.colour_range))
    axes[0].imshow(np.log1p(intrinsic), origin="upper", extent=extent, aspect="auto",
                   cmap="Greys")
    axes[0].set_title(f"intrinsic: {len(stars)} stars, Ks ≤ 15.5")
    axes[1].imshow(cmds[0, 0], origin="upper", extent=extent, aspect="auto", cmap="Greys")
    axes[1].set_title(f"observed (mock 2MASS, ABC/0 cuts): {n_obs[0]} stars")
    for ax in axes[:2]:
        ax.set_xlabel("J - Ks (mag)")
        ax.set_ylabel("Ks (mag)")
    d = profile.distances
    axes[2].plot(d, profile.cumulative[0], color="k")
    axes[2].set_xlim(0, 10)
    axes[2].set_xlabel("distance (kpc)")
    axes[2].set_ylabel("cumulative A_V (mag)")
    axes[2].set_title("the random extinction profile")
    fig.suptitle("One 30′ cell at (l, b) = (280°, 0°): built-in Galaxy model")
    fig.tight_layout()
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=90)


if __name__ == "__main__":
    main()
