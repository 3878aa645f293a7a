# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Query speed of CNNExtinctionMap.

1. File mode: 10^6 Galactic coordinates with distances, answered from a map of the
   paper's region (l = 257-303 deg, |b| <= 5 deg, HEALPix order 7, 100 distance
   nodes), side by side with dustmaps' MarshallQuery on a synthetic marshall.h5 of
   the real grid size (801 x 81 sightlines x 33 distances), in the same run.
2. On-the-fly mode: cells per second from a local TableSource, including star
   selection, CMDs, inference and the disk cache (the shipped model when it is
   installed, else the tiny test model — the table says which).

Each stage runs in a fresh process so that its peak memory (max RSS) is its own.

Run::

    python benchmarks/bench_query.py [--n-coords 1000000] [--n-cells 2000]
"""

import argparse
import concurrent.futures
import multiprocessing
import os
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REGION = {"l": (257.0, 303.0), "b": (-5.0, 5.0)}


def _peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _best(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _coords(n, seed=0):
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    rng = np.random.default_rng(seed)
    # inside both footprints: Marshall covers |l| <= 100 deg (l >= 260 here)
    l = rng.uniform(260.0, 300.0, n)
    b = rng.uniform(-4.9, 4.9, n)
    d = rng.uniform(0.0, 12.0, n)
    return SkyCoord(l * u.deg, b * u.deg, distance=d * u.kpc, frame="galactic")


def stage_file_mode(n_coords, repeat, workdir):
    from cnnext import CNNExtinctionMap
    from cnnext.extinction import ExtinctionLaw
    from cnnext.healpix import lonlat_to_cells
    from cnnext.profiles import ProfileMap

    l, b = np.meshgrid(np.linspace(*REGION["l"], 600), np.linspace(*REGION["b"], 140))
    cells = np.unique(lonlat_to_cells(l.ravel(), b.ravel(), 7))
    nodes = np.round(np.arange(1, 101) * 0.1, 10)
    rng = np.random.default_rng(1)
    av = np.cumsum(rng.uniform(0.0, 0.2, (cells.size, nodes.size)), axis=1)
    pm = ProfileMap(cells=cells, order=7, distances=nodes, av=av, sigma=0.1 * av + 0.05,
                    n_stars=np.full(cells.size, 500),
                    meta={"extinction_law": ExtinctionLaw("G23", 3.1).to_dict()})
    path = pm.write(Path(workdir) / "bench_map.fits")
    t0 = time.perf_counter()
    m = CNNExtinctionMap(map_fname=path)
    t_open = time.perf_counter() - t0
    c = _coords(n_coords)
    c_icrs = c.icrs
    m.query(c[:10])
    t_query = _best(lambda: m.query(c), repeat)
    t_ks = _best(lambda: m.query(c, band="Ks", return_sigma=True), repeat)
    t_icrs = _best(lambda: m.query(c_icrs), repeat)
    from astropy.coordinates import SkyCoord

    no_dist = SkyCoord(c.l[:100000], c.b[:100000], frame="galactic")
    t_prof = _best(lambda: m.query(no_dist), repeat)
    return {"cells": len(pm), "open_s": t_open, "query_s": t_query, "ks_sigma_s": t_ks,
            "icrs_s": t_icrs, "profiles_1e5_s": t_prof, "peak_mib": _peak_mib()}


def stage_marshall(n_coords, repeat, workdir):
    from cnnext.testing.dustmaps import write_marshall_h5

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dustmaps' missing-config warning
        from dustmaps.marshall import MarshallQuery

    path = write_marshall_h5(Path(workdir) / "marshall.h5",
                             distances=np.linspace(0.25, 16.25, 33))
    t0 = time.perf_counter()
    m = MarshallQuery(map_fname=str(path))
    t_open = time.perf_counter() - t0
    c = _coords(n_coords)
    m.query(c[:10])
    t_query = _best(lambda: m.query(c), repeat)
    return {"open_s": t_open, "query_s": t_query, "peak_mib": _peak_mib()}


def _stars_for_cells(n_cells, per_cell, seed=0):
    """A star table filling ``n_cells`` order-7 cells of the paper's region."""
    from astropy.table import Table

    from cnnext.healpix import cell_centres, lonlat_to_cells

    centre = int(lonlat_to_cells(280.0, 0.0, 7))
    # a compact block of cells around (280, 0): nested indices near each other
    # inside the shipped model's training region, so that no cell is masked
    l, b = np.meshgrid(np.linspace(258.0, 302.0, 1200), np.linspace(-4.6, 4.6, 300))
    cells = np.unique(lonlat_to_cells(l.ravel(), b.ravel(), 7))
    cells = cells[np.argsort(np.abs(cells - centre), kind="stable")][:n_cells]
    rng = np.random.default_rng(seed)
    n = cells.size * per_cell
    lc, bc = cell_centres(np.repeat(cells, per_cell), 7)
    # small offsets stay inside the 27' cells
    lon = lc + rng.uniform(-0.05, 0.05, n)
    lat = bc + rng.uniform(-0.05, 0.05, n)
    ks = rng.uniform(7.0, 15.0, n)
    jk = rng.gamma(2.0, 0.4, n)
    stars = Table({"l": lon, "b": lat, "J": ks + jk, "H": ks + 0.35 * jk, "Ks": ks,
                   "e_J": np.full(n, 0.03), "e_H": np.full(n, 0.03), "e_Ks": np.full(n, 0.03),
                   "ph_qual": np.full(n, "AAA"), "cc_flg": np.full(n, "000")})
    return stars, np.unique(lonlat_to_cells(lon, lat, 7))


def stage_on_the_fly(n_cells, per_cell, workdir, providers, threads, model_path=None):
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    from cnnext import CNNExtinctionMap
    from cnnext.healpix import cell_centres
    from cnnext.model import CNNModel, default_model_path
    from cnnext.photometry.table import TableSource
    from cnnext.sightlines import compute_cells
    from cnnext.testing.models import write_tiny_model

    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    shipped = model_path is None and default_model_path().is_file()
    if model_path is not None:
        path, label = model_path, f"given {Path(model_path).name}"
    elif shipped:
        path, label = None, f"shipped {default_model_path().name}"
    else:
        path = write_tiny_model(Path(workdir) / "tiny.onnx")
        label = "tiny test model (shipped model absent)"
    model = CNNModel(path, providers=providers)
    stars, cells = _stars_for_cells(n_cells, per_cell)
    source = TableSource(stars, key="table:bench")
    source.query_cells(cells[:1], 7)  # build the source's index outside the timing
    lon, lat = cell_centres(cells, 7)
    centres = SkyCoord(lon * u.deg, lat * u.deg, frame="galactic")

    t0 = time.perf_counter()
    pm = compute_cells(cells, source=source, model=model)
    t_pipeline = time.perf_counter() - t0

    # where the time goes: star selection, CMDs, inference
    from cnnext.cmds import build_cmds

    t0 = time.perf_counter()
    got = source.query_cells(cells, 7)
    t_stars = time.perf_counter() - t0
    rows = np.searchsorted(cells, got["cell"])
    t0 = time.perf_counter()
    cmds, _ = build_cmds(got, rows, cells.size, model.spec)
    t_cmds = time.perf_counter() - t0
    from cnnext.observation import estimate_cells

    t0 = time.perf_counter()
    obs, _ = estimate_cells(got, cells, 7)
    t_obs = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.predict(cmds, obs)
    t_infer = time.perf_counter() - t0
    del cmds

    cache = Path(tempfile.mkdtemp(dir=workdir))
    m = CNNExtinctionMap(model=model, source=source, cache=cache)
    t0 = time.perf_counter()
    prof = m.query(centres)
    t_query = time.perf_counter() - t0
    m2 = CNNExtinctionMap(model=model, source=source, cache=cache)
    t0 = time.perf_counter()
    prof2 = m2.query(centres)
    t_cached = time.perf_counter() - t0
    assert np.array_equal(prof, prof2, equal_nan=True)
    return {"model": label,
            "providers": ",".join(model.providers), "cells": len(pm), "stars": len(stars),
            "pipeline_s": t_pipeline, "query_s": t_query, "cached_s": t_cached,
            "stars_s": t_stars, "cmds_s": t_cmds, "obs_s": t_obs, "infer_s": t_infer,
            "peak_mib": _peak_mib()}


def _run(fn, *args):
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
        return pool.submit(fn, *args).result()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-coords", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--n-cells", type=int, default=2000)
    parser.add_argument("--stars-per-cell", type=int, default=400)
    parser.add_argument("--providers", default="auto")
    parser.add_argument("--model", default=None,
                        help="ONNX model for the on-the-fly stage (default: the shipped "
                             "model, else the tiny test model)")
    parser.add_argument("--threads", type=int, default=0,
                        help="OMP_NUM_THREADS for the on-the-fly stage (0: default)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as workdir:
        ours = _run(stage_file_mode, args.n_coords, args.repeat, workdir)
        marshall = _run(stage_marshall, args.n_coords, args.repeat, workdir)
        fly = _run(stage_on_the_fly, args.n_cells, args.stars_per_cell, workdir,
                   args.providers, args.threads, args.model)

    n = args.n_coords
    rows = [
        ("file mode: CNNExtinctionMap, galactic + distance", ours["query_s"], n,
         ours["peak_mib"]),
        ("file mode: same, band='Ks' + return_sigma", ours["ks_sigma_s"], n, ours["peak_mib"]),
        ("file mode: same, ICRS input (incl. transform)", ours["icrs_s"], n, ours["peak_mib"]),
        ("file mode: 1e5 whole profiles (100 nodes)", ours["profiles_1e5_s"], 100000,
         ours["peak_mib"]),
        ("dustmaps MarshallQuery, galactic + distance", marshall["query_s"], n,
         marshall["peak_mib"]),
    ]
    print(f"cnnext query benchmark (python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs visible)")
    print(f"{'case':52s} {'time (s)':>9s} {'per second':>13s} {'peak RSS (MiB)':>15s}")
    for name, t, count, mem in rows:
        print(f"{name:52s} {t:9.3f} {count / t:13.3g} {mem:15.0f}")
    print(f"ratio CNNExtinctionMap / MarshallQuery speed: "
          f"{marshall['query_s'] / ours['query_s']:.1f}x "
          f"(map of {ours['cells']} cells; opening: cnnext {ours['open_s']:.2f} s, "
          f"Marshall {marshall['open_s']:.2f} s)")
    print()
    print(f"on-the-fly: {fly['cells']} cells, {fly['stars']} stars, model: {fly['model']}, "
          f"providers: {fly['providers']}")
    print(f"{'case':52s} {'time (s)':>9s} {'cells/s':>13s} {'peak RSS (MiB)':>15s}")
    for name, key in (("  part: star selection (TableSource.query_cells)", "stars_s"),
                      ("  part: CMDs (build_cmds)", "cmds_s"),
                      ("  part: depth estimate (estimate_cells)", "obs_s"),
                      ("  part: inference (CNNModel.predict)", "infer_s"),
                      ("compute_cells (stars -> CMDs -> CNN)", "pipeline_s"),
                      ("CNNExtinctionMap.query, empty cache (+ cache write)", "query_s"),
                      ("CNNExtinctionMap.query, new instance, disk cache", "cached_s")):
        print(f"{name:52s} {fly[key]:9.3f} {fly['cells'] / fly[key]:13.4g} "
              f"{fly['peak_mib']:15.0f}")


if __name__ == "__main__":
    main()
