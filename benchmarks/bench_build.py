# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Cells per second of `cnnext.build_map` from a local catalogue: no Dask, then a
Dask `LocalCluster` with 1 and 2 worker processes.

The catalogue (the `cnnext fetch` format) holds fast mock stars
(`bench_plane.FastMockSource`) over ``--region`` with ``--stars-per-cell`` stars per
order-7 cell in the plane, as in dense 2MASS fields. Every run rebuilds the whole
region from scratch (``resume=False``); the cluster start-up is not timed, the
model loading on each worker is.

Usage::

    python benchmarks/bench_build.py
    python benchmarks/bench_build.py --region "galactic; box(280, 0, 20, 4, 0)" --repeat 2
"""

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_plane import _model_path, make_catalogue


def _timed_build(region, source, model, output, client, tile_order):
    from cnnext import build_map

    t0 = time.perf_counter()
    m = build_map(region, source=source, model=model, output=output, client=client,
                  tile_order=tile_order, overwrite=True, resume=False, progress_bar=False,
                  providers="cpu")
    return time.perf_counter() - t0, len(m)


def _warm_worker(path, sha256):
    from cnnext.build import _worker_model
    from cnnext.photometry.local import LocalCatalogSource  # noqa: F401
    from cnnext.sightlines import predict_cells  # noqa: F401

    _worker_model(path, sha256, "cpu")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--region", default="galactic; box(280, 0, 80, 4, 0)")
    parser.add_argument("--stars-per-cell", type=float, default=3000.0)
    parser.add_argument("--tile-order", type=int, default=None)
    parser.add_argument("--model", default=None)
    parser.add_argument("--repeat", type=int, default=1, help="runs per setting (best kept)")
    parser.add_argument("--workdir", default="/tmp/cnnext-bench-build")
    parser.add_argument("--hats", action="store_true",
                        help="also time the same build from a HATS copy of the catalogue "
                             "(HatsSource, LSDB), without Dask")
    args = parser.parse_args(argv)

    from distributed import Client, LocalCluster

    from cnnext.model import CNNModel
    from cnnext.photometry.local import LocalCatalogSource
    from cnnext.region import region_to_cells

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    n_cells = len(region_to_cells(args.region, 7))
    tag = hashlib.sha256(f"{args.region}|{args.stars_per_cell}".encode()).hexdigest()[:12]
    catalogue = workdir / f"catalogue-{tag}"
    cat, t_gen = make_catalogue(catalogue, args.region, args.stars_per_cell * n_cells)
    model_file, model_kind = _model_path(args.model)
    model = CNNModel(model_file, providers="cpu")
    source = LocalCatalogSource(catalogue)
    output = workdir / "map.fits"

    results = []
    best = min(_timed_build(args.region, source, model, output, None, args.tile_order)[0]
               for _ in range(args.repeat))
    results.append(("local (no Dask)", best))
    for n_workers in (1, 2):
        with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            # steady state: imports and the model loaded on every worker before timing
            client.run(_warm_worker, str(model_file.resolve()), model.sha256)
            best = min(_timed_build(args.region, source, model, output, client,
                                    args.tile_order)[0] for _ in range(args.repeat))
        results.append((f"Dask, {n_workers} worker{'s' if n_workers > 1 else ''}", best))

    if args.hats:
        import warnings

        from cnnext.fetch import to_hats
        from cnnext.photometry.hats import HatsSource

        hats_path = workdir / f"{catalogue.name}-hats"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # lsdb's pandas calls
            if not any((hats_path / name).exists()
                       for name in ("collection.properties", "hats.properties")):
                to_hats(catalogue, hats_path)
            best = min(_timed_build(args.region, HatsSource(hats_path), model, output, None,
                                    args.tile_order)[0] for _ in range(args.repeat))
        results.append(("HATS (no Dask)", best))

    print()
    print(f"region: {args.region}  ({n_cells} cells, {cat.count_stars():,} stars, "
          f"tile order {args.tile_order if args.tile_order is not None else 'default'})")
    print(f"model: {model_file.name} ({model_kind}); {os.cpu_count()} CPU cores, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"{'setting':<18} {'seconds':>8} {'cells/s':>9} {'speed-up':>9}")
    base = results[0][1]
    for name, seconds in results:
        print(f"{name:<18} {seconds:8.1f} {n_cells / seconds:9.1f} {base / seconds:9.2f}")


if __name__ == "__main__":
    main()
