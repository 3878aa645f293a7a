# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
A Galactic-plane-sized map build from a local catalogue of mock stars.

The whole plane at |b| <= 5 deg, all longitudes, in order-7 cells (27.5', 16,896
cells), built by `cnnext.build_map` from a local catalogue (the `cnnext fetch`
format, read by `~cnnext.photometry.local.LocalCatalogSource`) of >= 50 million mock stars.

The stars are made by a fast vectorised generator (`FastMockSource`, below): star
counts that fall off with |b|, uniform positions inside each cell, a luminosity
function, dwarf and giant colours and a random share of the sightline's
extinction. It is not a Galaxy model (use `cnnext.synthetic.MockSky` for
science); it only has to load the build like real 2MASS would: the same number of
stars per cell, in the same star-table schema, through the same code.

Usage::

    python benchmarks/bench_plane.py                      # 50 M stars, shipped model
    python benchmarks/bench_plane.py --stars 5e6 --lmax 60   # a quick smaller run
    python benchmarks/bench_plane.py --workers 2             # on a 2-worker LocalCluster

The catalogue is kept in ``--workdir`` (default ``/tmp/cnnext-bench-plane``) and
reused by later runs with the same parameters. The build itself runs in a child
process, so that its peak memory (max RSS) is measured alone.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from cnnext.photometry.base import PhotometrySource

#: G23 (R_V = 3.1) A_band / A_V at the 2MASS wavelengths (METHOD.md section 5).
A_OVER_AV = {"J": 0.275, "H": 0.167, "Ks": 0.107}
#: 2MASS 10-sigma magnitudes (METHOD.md section 4).
M10 = {"J": 15.8, "H": 15.1, "Ks": 14.3}


def _density_shape(b):
    """Relative star counts against latitude (deg): a disc plus a thin layer."""
    return 0.6 + 0.4 * np.exp(-np.abs(b) / 2.0)


class FastMockSource(PhotometrySource):
    """
    Mock 2MASS stars made fast (tens of millions per minute), for benchmarks.

    Parameters
    ----------
    stars_per_cell : float
        Mean number of stars of a cell at b = 0 is ``stars_per_cell``; it falls
        to 60% of that away from the plane (see `_density_shape`).
    order : int
        HEALPix order at which ``stars_per_cell`` is counted.
    seed : int
        Stars of a request depend on the seed and on the cells requested.
    """

    def __init__(self, stars_per_cell, *, order=7, seed=0):
        self.stars_per_cell = float(stars_per_cell)
        self.order = int(order)
        self.seed = int(seed)
        self.key = f"fastmock:{self.stars_per_cell:.0f}:{self.seed}"

    def fetch_cells(self, cells, order, *, progress_bar=False):
        import astropy.units as u
        from astropy.table import Table
        from astropy_healpix import HEALPix, level_to_nside

        from cnnext.healpix import cell_centres

        cells = np.unique(np.asarray(cells, dtype=np.int64))
        rng = np.random.default_rng([self.seed, int(cells[0]) if cells.size else 0,
                                     cells.size])
        _, bc = cell_centres(cells, order)
        scale = 4.0 ** (self.order - order)
        counts = rng.poisson(self.stars_per_cell * scale * _density_shape(bc))
        star_cells = np.repeat(cells, counts)
        n = star_cells.size
        hp = HEALPix(nside=level_to_nside(order), order="nested")
        lon, lat = hp.healpix_to_lonlat(star_cells, dx=rng.random(n), dy=rng.random(n))
        l, b = lon.to_value(u.deg), lat.to_value(u.deg)
        # sightline extinction: strong in the plane, a random share for each star
        av_total = 1.0 + 25.0 * np.exp(-np.abs(b) / 1.0)
        av = av_total * rng.beta(1.5, 1.5, n)
        ks0 = 15.9 - rng.exponential(1.4, n)
        giant = rng.random(n) < 0.4
        jk0 = np.where(giant, 0.75 + 0.08 * rng.standard_normal(n),
                       0.45 + 0.12 * rng.standard_normal(n))
        hk0 = 0.3 * jk0 + 0.03 * rng.standard_normal(n)
        mags = {"Ks": ks0 + A_OVER_AV["Ks"] * av}
        mags["J"] = ks0 + jk0 + A_OVER_AV["J"] * av
        mags["H"] = ks0 + hk0 + A_OVER_AV["H"] * av
        t = Table()
        t["l"], t["b"] = l, b
        letters = []
        for band in ("J", "H", "Ks"):
            x = 10 ** (0.4 * (mags[band] - M10[band]))
            err = np.sqrt((0.10857 * x) ** 2 + 0.03**2 * x + 0.02**2)
            t[band] = np.round(mags[band] + err * rng.standard_normal(n), 3)
            t[f"e_{band}"] = np.round(err, 3)
            letters.append(np.where(err < 0.10857, "A", np.where(err < 0.21714, "C", "D")))
        t["ph_qual"] = np.char.add(np.char.add(letters[0], letters[1]), letters[2])
        t["cc_flg"] = np.full(n, "000")
        t["cell"] = star_cells
        return t

    def fetch_cone(self, centre, radius_deg):
        raise NotImplementedError("the benchmark's mock sky answers cell queries only")


def stars_per_cell_for(total, cells, order):
    """``stars_per_cell`` that gives ``total`` stars over ``cells`` on average."""
    from cnnext.healpix import cell_centres

    _, b = cell_centres(cells, order)
    return total / np.sum(_density_shape(b))


def make_catalogue(path, region, total, *, order=7, seed=0):
    """Write the mock catalogue with `cnnext.fetch.fetch_region` (reused if complete)."""
    from cnnext.fetch import fetch_region
    from cnnext.photometry.local import LocalCatalogSource
    from cnnext.region import region_to_cells

    cells = region_to_cells(region, order)
    source = FastMockSource(stars_per_cell_for(total, cells, order), order=order, seed=seed)
    if Path(path, "manifest.json").exists():
        cat = LocalCatalogSource(path)
        manifest = json.loads(Path(path, "manifest.json").read_text())
        if cat.complete and manifest.get("source") == source.key and \
                len(cat.cells) == len(cells):
            return cat, 0.0
    t0 = time.perf_counter()
    cat = fetch_region(region, source=source, output=path, order=order, overwrite=True,
                       progress_bar=True)
    return cat, time.perf_counter() - t0


def _model_path(arg):
    """The model to time: given, shipped, else an untrained network of the shipped kind."""
    from cnnext.model import default_model_path

    if arg:
        return Path(arg), "given"
    if default_model_path().is_file():
        return default_model_path(), "shipped"
    path = Path("/tmp/cnnext-bench-compact-untrained.onnx")
    if not path.exists():
        # inference costs the same with trained or random weights: time the architecture
        from cnnext import CMDSpec, ExtinctionLaw
        from cnnext.model import ModelMetadata
        from cnnext.training.export import export_onnx
        from cnnext.training.network import build_network

        meta = ModelMetadata(CMDSpec(), [0.1 * k for k in range(1, 101)], 7,
                             ExtinctionLaw("G23", 3.1), min_stars=20)
        export_onnx(build_network("compact", CMDSpec().shape, 100).eval(), path, meta)
    return path, ("untrained compact CNN, the architecture of the shipped model "
                  "(no shipped model in this tree)")


def run_build(catalogue, region, model, output, workers, tile_order):
    """The build itself (in the child process): returns timing and the map's size."""
    from cnnext import build_map
    from cnnext.model import CNNModel
    from cnnext.photometry.local import LocalCatalogSource

    source = LocalCatalogSource(catalogue)
    model = CNNModel(model, providers="cpu")
    t0 = time.perf_counter()
    if workers:
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            t0 = time.perf_counter()
            m = build_map(region, source=source, model=model, output=output, client=client,
                          tile_order=tile_order, overwrite=True, resume=False,
                          progress_bar=False, providers="cpu")
            elapsed = time.perf_counter() - t0
            worker_rss = client.run(lambda: resource.getrusage(
                resource.RUSAGE_SELF).ru_maxrss)
    else:
        m = build_map(region, source=source, model=model, output=output,
                      tile_order=tile_order, overwrite=True, resume=False,
                      progress_bar=True)
        elapsed = time.perf_counter() - t0
        worker_rss = {}
    return {"seconds": elapsed, "cells": len(m), "n_stars_counted": int(m.n_stars.sum()),
            "driver_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "worker_maxrss_mb": max(worker_rss.values(), default=0) / 1024}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stars", type=float, default=50e6, help="catalogue size")
    parser.add_argument("--lmax", type=float, default=360.0,
                        help="longitude width of the region (deg), centred on l = 180")
    parser.add_argument("--bmax", type=float, default=5.0, help="|b| limit (deg)")
    parser.add_argument("--workers", type=int, default=0,
                        help="Dask worker processes (0: no Dask)")
    parser.add_argument("--tile-order", type=int, default=None)
    parser.add_argument("--model", default=None, help="ONNX model (default shipped)")
    parser.add_argument("--workdir", default="/tmp/cnnext-bench-plane")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    region = f"galactic; box(180, 0, {args.lmax}, {2 * args.bmax}, 0)"
    if args.child:  # the build, in its own process
        spec = json.loads(args.child)
        result = run_build(spec["catalogue"], region, spec["model"], spec["output"],
                           args.workers, args.tile_order)
        print("RESULT " + json.dumps(result))
        return

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    catalogue = workdir / f"catalogue-{args.stars:.0f}-{args.lmax:g}-{args.bmax:g}"
    cat, t_gen = make_catalogue(catalogue, region, args.stars)
    n_stars = cat.count_stars()
    model, model_kind = _model_path(args.model)
    spec = json.dumps({"catalogue": str(catalogue), "model": str(model),
                       "output": str(workdir / "plane.fits")})
    child = subprocess.run([sys.executable, __file__, "--child", spec, "--workers",
                            str(args.workers), "--lmax", str(args.lmax), "--bmax",
                            str(args.bmax)]
                           + ([] if args.tile_order is None else
                              ["--tile-order", str(args.tile_order)]),
                           stdout=subprocess.PIPE, text=True, check=True)
    result = json.loads(child.stdout.split("RESULT ", 1)[1])
    size = sum(p.stat().st_size for p in (catalogue / "tiles").glob("*.parquet"))
    rows = [("region", region),
            ("cells (order 7)", f"{result['cells']:,}"),
            ("stars in catalogue", f"{n_stars:,} ({size / 2**30:.2f} GiB Parquet)"),
            ("catalogue generation", f"{t_gen:.0f} s" if t_gen else "reused"),
            ("model", f"{model.name} ({model_kind})"),
            ("Dask workers", str(args.workers or "none (local)")),
            ("build time", f"{result['seconds']:.1f} s ({result['seconds'] / 60:.2f} min)"),
            ("cells / s", f"{result['cells'] / result['seconds']:.1f}"),
            ("stars / s", f"{n_stars / result['seconds']:,.0f}"),
            ("peak memory, build process", f"{result['driver_maxrss_mb']:.0f} MiB"),
            ("peak memory, per worker", f"{result['worker_maxrss_mb']:.0f} MiB"
             if args.workers else "-"),
            ("CPU", f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")]
    width = max(len(k) for k, _ in rows)
    print()
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
