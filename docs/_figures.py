# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Figures of the landing page, drawn at build time by ``.. plot::`` directives.

They read the map ``cnnext demo`` left in the build's working directory (see
``_generate.py``) and the shipped model's metadata, so they follow the code and the
model. The pages' other figures show their code: it is the code a reader runs.
"""

import dataclasses
import warnings
from functools import cache

import numpy as np

__all__ = ["coverage_figure", "slice_figure", "demo_map", "demo_truth"]

DEMO_MAP = "cnnext-demo/demo-map.fits"


@cache
def demo_map():
    """The demo's map (`~cnnext.read_map`, read once per build)."""
    from _generate import demo_dir

    from cnnext import read_map

    return read_map(demo_dir() / DEMO_MAP)


@cache
def demo_truth():
    """The mock sky's true cumulative A_V of the demo map's cells (mag)."""
    from cnnext.synthetic import MockSky

    pm = demo_map()
    sky = MockSky(seed=2022, order=pm.order)
    return np.asarray(sky.true_profile(pm.cells, pm.order).nodes(pm.distances))


def coverage_figure():
    """The Galactic plane around Carina: the model's region, its sightlines, the demo map."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from cnnext.healpix import cell_centres, cell_size
    from cnnext.model import CNNModel

    training = CNNModel().metadata.training
    bounds = training["region"]["bounds"]
    pm = demo_map()
    fig, ax = plt.subplots(figsize=(9.0, 2.6), layout="constrained")
    (l0, l1), (b0, b1) = bounds["l"], bounds["b"]
    ax.add_patch(Rectangle((l0, b0), l1 - l0, b1 - b0, facecolor="#dbe9f6",
                           edgecolor="#1f5fa0", lw=1.5, label="shipped model's region"))
    lon, lat = cell_centres(pm.cells, pm.order)
    k = int(np.argmin(np.abs(pm.distances - 4.0)))
    size = cell_size(pm.order) / 60.0
    sc = ax.scatter(lon, lat, c=pm.av[:, k], s=(size * 14) ** 2, marker="s", lw=0,
                    cmap="magma_r", vmin=0, label="demo map")
    # an ensemble's members may have been trained on different sightlines: all of them
    members = [m["training"] for m in training.get("members", [])] or [training]
    sl = np.unique(np.concatenate([np.asarray(m["sightlines"], float) for m in members]),
                   axis=0)
    ax.plot(sl[:, 0], sl[:, 1], "o", ms=6, mfc="white", mec="k",
            label="training sightlines")
    ax.set_xlim(330, 230)
    ax.set_ylim(-10, 10)
    ax.set_aspect("equal")
    ax.set_xlabel("Galactic longitude l (deg)")
    ax.set_ylabel("b (deg)")
    ax.axhline(0, color="0.7", lw=0.5, zorder=0)
    fig.colorbar(sc, ax=ax, label=r"demo map: $A_V$ to 4 kpc (mag)", shrink=0.9, pad=0.01)
    ax.legend(loc="lower left", fontsize="small", ncols=3, framealpha=0.9)
    ax.text(250, 7.5, "outside: NaN", ha="center", color="0.4", fontsize="small")
    ax.text(312, 7.5, "outside: NaN", ha="center", color="0.4", fontsize="small")
    return fig


def slice_figure(*, diff=True):
    """Longitude-distance slice at b = 0 of the demo map next to the truth."""
    import astropy.units as u
    import matplotlib.pyplot as plt

    from cnnext import CNNExtinctionMap
    from cnnext.compare import compare_slice
    from cnnext.plotting import plot_slice

    pm = demo_map()
    truth = dataclasses.replace(pm, av=demo_truth(), sigma=np.zeros_like(pm.av))
    maps = {"cnnext": CNNExtinctionMap(map_fname=pm),
            "truth": CNNExtinctionMap(map_fname=truth)}
    lons = np.arange(280.2, 299.81, 0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = compare_slice(maps, lons, b=0.0, distances=pm.distances)
    n = 3 if diff else 2
    fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 3.4), sharey=True,
                             layout="constrained")
    vmax = float(np.nanpercentile(table["truth"].to_value(u.mag), 99))
    for i, name in enumerate(maps):
        plot_slice(lons, pm.distances, table[name], ax=axes[i], vmax=vmax,
                   colorbar=i == 1, title=name)
    if diff:
        delta = table["cnnext"].to_value(u.mag) - table["truth"].to_value(u.mag)
        plot_slice(lons, pm.distances, delta, ax=axes[2], cmap="RdBu_r",
                   vmin=-vmax / 3, vmax=vmax / 3, title="cnnext − truth")
    for ax in axes[1:]:
        ax.set_ylabel("")
    return fig


def metrics_figure():
    """Held-out metrics of the shipped model against distance, from its metadata."""
    import matplotlib.pyplot as plt

    from cnnext.model import CNNModel

    metrics = CNNModel().metadata.metrics
    keys = [("median_rel_err", "median relative error", 100.0, "%"),
            ("bias_mag", "bias", 1.0, "mag"), ("rms_mag", "RMS", 1.0, "mag")]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), layout="constrained")
    for ax, (key, label, scale, unit) in zip(axes, keys):
        for zone, style in (("inside", "o-"), ("outside", "s--")):
            values = metrics.get(zone, {}).get(key, {})
            if not values:
                continue
            d = sorted(values, key=float)
            ax.plot([float(x) for x in d], [scale * values[x] for x in d], style,
                    label=f"{zone} the region")
        ax.set_xlabel("distance (kpc)")
        ax.set_ylabel(f"{label} ({unit})")
        if key == "bias_mag":
            ax.axhline(0, color="0.6", lw=0.8)
    axes[0].legend(fontsize="small")
    return fig
