# Licensed under a 3-clause BSD style license - see LICENSE.rst
import os
import stat

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from cnnext.exceptions import MapFileError
from cnnext.io.mapfile import read_map
from cnnext.profiles import FLAG_FEW_STARS, ProfileMap

D = np.arange(1, 101) * 0.1


def _map(cells, seed=0, sha="a" * 64):
    rng = np.random.default_rng(seed)
    n = len(cells)
    return ProfileMap(cells=cells, order=7, distances=D,
                      av=np.cumsum(rng.uniform(0, 0.1, (n, 100)), axis=1),
                      sigma=rng.uniform(0.1, 0.2, (n, 100)), n_stars=rng.integers(0, 900, n),
                      flags=np.where(np.arange(n) == 0, FLAG_FEW_STARS, 0),
                      meta={"model_sha256": sha, "source": "test"})


def test_write_read_roundtrip(tmp_path):
    m = _map([30, 4, 17])
    path = m.write(tmp_path / "m.fits")
    back = read_map(path)
    assert back.cells.tolist() == [4, 17, 30]
    np.testing.assert_array_equal(back.av, m.av)
    np.testing.assert_array_equal(back.flags, m.flags)
    np.testing.assert_allclose(back.distances, D)
    assert back.meta == m.meta
    # plain astropy reads it, with the HEALPix keywords of a partial-sky map
    with fits.open(path) as hdul:
        h = hdul["PROFILES"].header
        assert (h["PIXTYPE"], h["ORDERING"], h["INDXSCHM"], h["COORDSYS"], h["NSIDE"]) == \
            ("HEALPIX", "NESTED", "EXPLICIT", "G", 128)
    assert len(Table.read(path, hdu="PROFILES")) == 3
    with pytest.raises(OSError, match="exists"):
        m.write(path)
    m.write(path, overwrite=True)


def test_merge_and_lookup():
    a, b = _map([1, 2, 3]), _map([3, 4], seed=1)
    merged = a.merge(b)
    assert merged.cells.tolist() == [1, 2, 3, 4]
    np.testing.assert_array_equal(merged.av[2], a.av[2])  # first map wins
    assert merged.lookup([4, 9, 1]).tolist() == [3, -1, 0]
    assert ProfileMap(cells=[], order=7, distances=D, av=np.zeros((0, 100)),
                      sigma=np.zeros((0, 100)), n_stars=[]).lookup([1]).tolist() == [-1]
    with pytest.raises(ValueError, match="different models"):
        a.merge(_map([9], sha="b" * 64))


@pytest.mark.parametrize("size", [100, 3000, 8000, 14000])
def test_truncated_file_names_file(tmp_path, size):
    path = _map([1, 2, 3]).write(tmp_path / "m.fits")
    data = path.read_bytes()
    path.write_bytes(data[:min(size, len(data) - 10)])
    with pytest.raises(MapFileError, match="m.fits"):
        read_map(path)


def test_not_a_cnnext_map(tmp_path):
    path = tmp_path / "other.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(
        [fits.Column("X", "E", array=np.zeros(2))], name="PROFILES")]).writeto(path)
    with pytest.raises(MapFileError, match="other.fits"):
        read_map(path)
    with pytest.raises(FileNotFoundError, match="missing.fits"):
        read_map(tmp_path / "missing.fits")


def test_bad_cells():
    with pytest.raises(ValueError, match="HEALPix indices"):
        _map([12 * 4**7])


def test_checksums_written_and_verified(tmp_path):
    m = _map([1, 2, 3])
    path = m.write(tmp_path / "m.fits")
    with fits.open(path, checksum=True) as hdul:
        for hdu in hdul:
            assert hdu.header["CHECKSUM"] and hdu.header["DATASUM"]
    # change 8 bytes inside the AV column of the second row: values, not structure
    with fits.open(path) as hdul:
        hdu = hdul["PROFILES"]
        start = hdu.fileinfo()["datLoc"] + hdu.columns.dtype.fields["AV"][1] + \
            hdu.columns.dtype.itemsize + 40
    data = bytearray(path.read_bytes())
    data[start:start + 8] = b"\x41\x20\x00\x00\x41\x20\x00\x00"
    path.write_bytes(bytes(data))
    with pytest.raises(MapFileError, match=r"m\.fits.*changed.*Checksum verification failed"):
        read_map(path)


def test_map_file_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = _map([1, 2]).write(tmp_path / "m.fits")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["m.fits"]


def test_observation_estimates_roundtrip_and_old_maps(tmp_path):
    from cnnext.observation import DESCRIPTORS

    m = _map([30, 4, 17])
    m.observation = np.tile(np.arange(6, dtype=np.float32) + 14.0, (3, 1))
    m.observation[1] = np.nan
    back = read_map(m.write(tmp_path / "m.fits"))
    np.testing.assert_array_equal(back.observation, m.observation)  # rows of sorted cells
    with fits.open(tmp_path / "m.fits") as hdul:
        assert hdul["PROFILES"].header["OBSNAMES"].split(",") == list(DESCRIPTORS)
        assert hdul["PROFILES"].columns["OBS"].unit == "mag"
    # merging and selecting keep them with their cells
    merged = back.merge(_map([8]))
    assert np.isnan(merged.observation[merged.lookup([8])[0]]).all()
    np.testing.assert_array_equal(merged.select([0]).observation, back.observation[:1])
    # a map written before the OBS column existed reads with NaN estimates
    with fits.open(tmp_path / "m.fits") as hdul:
        prof = hdul["PROFILES"]
        cols = [c for c in prof.columns if c.name != "OBS"]
        hdul["PROFILES"] = fits.BinTableHDU.from_columns(cols, header=prof.header,
                                                         name="PROFILES")
        del hdul["PROFILES"].header["OBSNAMES"]
        hdul.writeto(tmp_path / "old.fits", checksum=True)
    old = read_map(tmp_path / "old.fits")
    assert old.observation.shape == (3, 6) and np.isnan(old.observation).all()


def test_old_import_path_still_works():
    # cnnext.mapfile re-exports the in-memory map (cnnext.profiles) and the FITS
    # reader and writer (cnnext.io.mapfile) for scripts written against it
    import cnnext.io.mapfile
    import cnnext.mapfile
    import cnnext.profiles

    assert cnnext.mapfile.ProfileMap is cnnext.profiles.ProfileMap
    assert cnnext.mapfile.FLAG_PARTIAL == cnnext.profiles.FLAG_PARTIAL
    assert cnnext.mapfile.read_map is cnnext.io.mapfile.read_map
    assert cnnext.mapfile.write_map is cnnext.io.mapfile.write_map
