# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Tiny data files in the real formats of other 3D dust maps, for offline tests and docs.

Each writer produces a file that the corresponding `dustmaps` query class opens
unchanged (`~dustmaps.marshall.MarshallQuery`, `~dustmaps.bayestar.BayestarQuery`,
`~dustmaps.edenhofer2023.Edenhofer2023Query`), filled with simple analytic
extinction so tests can check numbers exactly. Layouts follow the dustmaps 1.0
readers: Marshall's HDF5 of ``(801, 81, n_dist)`` grids, Bayestar's HDF5 with
``pixel_info``/``samples``/``best_fit``, Edenhofer's HEALPix-times-distance FITS.
"""

import numpy as np

__all__ = ["write_marshall_h5", "write_bayestar_h5", "write_edenhofer_fits",
           "MARSHALL_DISTANCES"]

#: Distance nodes (kpc) of the tiny Marshall file.
MARSHALL_DISTANCES = np.arange(1, 17) * 0.5


def write_marshall_h5(path, *, rate=0.1, sigma=0.05, distances=MARSHALL_DISTANCES):
    """
    Write a Marshall et al. (2006)-format HDF5 file with A_Ks = ``rate`` x d (kpc).

    The grid is the real one (l = -100…100°, b = -10…10° every 0.25°, 801 x 81
    sightlines), with the same distance nodes on every sightline and a constant
    ``sigma`` (mag).
    """
    import h5py

    d = np.asarray(distances, dtype="f4")
    l, b = np.meshgrid(np.arange(801) * 0.25 - 100.0, np.arange(81) * 0.25 - 10.0,
                       indexing="ij")
    dist = np.broadcast_to(d, (801, 81, d.size)).astype("f4")
    with h5py.File(path, "w") as f:
        f.create_dataset("l", data=l.astype("f4"))
        f.create_dataset("b", data=b.astype("f4"))
        f.create_dataset("A", data=(rate * dist).astype("f4"))
        f.create_dataset("sigma_A", data=np.full(dist.shape, sigma, "f4"))
        f.create_dataset("dist", data=dist)
        f.create_dataset("sigma_dist", data=np.full(dist.shape, 0.1, "f4"))
        f.create_dataset("chi2_all", data=np.ones(l.shape, "f4"))
        f.create_dataset("chi2_giants", data=np.ones(l.shape, "f4"))
    return path


def write_bayestar_h5(path, *, l_range=(270.0, 310.0), b_range=(-5.0, 5.0), nside=32,
                      rate=0.3, spread=0.1, n_samples=5):
    """
    Write a Bayestar-format HDF5 file over a Galactic box.

    The reddening (Bayestar units) is ``rate`` x d (kpc) at the 31 distance-modulus
    nodes 4, 4.5, …, 19 mag; the ``n_samples`` samples are that value times
    ``1 + spread * z`` with ``z`` evenly spaced in [-1, 1] (so their mean and
    median equal it); ``best_fit`` equals it too. Pixels are nested HEALPix at
    ``nside`` whose centres lie in the box.
    """
    import astropy.units as u
    import h5py
    from astropy_healpix import HEALPix

    hp = HEALPix(nside=nside, order="nested")
    lon, lat = hp.healpix_to_lonlat(np.arange(hp.npix))
    lon, lat = lon.to_value(u.deg), lat.to_value(u.deg)
    sel = np.flatnonzero((lon >= l_range[0]) & (lon <= l_range[1]) &
                         (lat >= b_range[0]) & (lat <= b_range[1]))
    dm = np.linspace(4.0, 19.0, 31)
    d_kpc = 10.0 ** (0.2 * dm - 2.0)
    base = rate * d_kpc
    z = np.linspace(-1.0, 1.0, n_samples)
    samples = np.broadcast_to(base * (1.0 + spread * z[:, None]),
                              (sel.size, n_samples, dm.size)).astype("f4")
    info = np.zeros(sel.size, dtype=[("nside", "u4"), ("healpix_index", "u8"),
                                     ("converged", "u1"), ("n_stars", "u4"),
                                     ("DM_reliable_min", "f4"), ("DM_reliable_max", "f4")])
    info["nside"] = nside
    info["healpix_index"] = sel
    info["converged"] = 1
    info["n_stars"] = 100
    info["DM_reliable_min"] = 6.0
    info["DM_reliable_max"] = 16.0
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("pixel_info", data=info)
        ds.attrs["DM_bin_edges"] = dm
        f.create_dataset("samples", data=samples)
        f.create_dataset("best_fit", data=np.broadcast_to(base, (sel.size, dm.size))
                         .astype("f4"))
    return path


def write_edenhofer_fits(path, *, nside=4, density=1e-3, radii_bounds=None, std=None):
    """
    Write an Edenhofer et al. (2023)-format FITS file (mean and std, no samples).

    The extinction density is a constant ``density`` (E per pc) on a HEALPix
    (nested, ``nside``) times distance grid; ``radii_bounds`` are the bin
    boundaries in pc (default 69-1250 pc in 50 bins, logarithmic like the real
    map). Queried with ``integrated=True``, the map returns at bin centre k
    ``density * (radii_bounds[k + 1] - radii_bounds[0])``.
    """
    from astropy.io import fits

    bounds = np.geomspace(69.0, 1250.0, 51) if radii_bounds is None else \
        np.asarray(radii_bounds, float)
    centres = 0.5 * (bounds[1:] + bounds[:-1])
    npix = 12 * nside**2
    data = np.full((centres.size, npix), density, dtype="f8")
    header = fits.Header()
    header["NSIDE"] = nside
    header["ORDERING"] = "NESTED"
    header["CUNIT"] = "E (ZGR23) / pc"
    hdus = [fits.PrimaryHDU(), fits.ImageHDU(data, header=header, name="MEAN")]
    stdh = header.copy()
    hdus.append(fits.ImageHDU(np.full_like(data, 0.1 * density if std is None else std),
                              header=stdh, name="STD."))
    hdus.append(fits.BinTableHDU.from_columns(
        [fits.Column("radial pixel centers", "D", array=centres)]))
    hdus.append(fits.BinTableHDU.from_columns(
        [fits.Column("radial pixel boundaries", "D", array=bounds)]))
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path
