# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
2MASS photometry from the IRSA TAP service (table ``fp_psc``) through astroquery.
"""

import hashlib
import io
import warnings

from .. import __version__
from ..config import conf
from ..exceptions import CnnextWarning
from ..io.core import atomic_write_bytes
from ._remote import (
    PermanentError,
    TiledRemoteSource,
    answer_to_stars,
    cache_dir,
    configure_session,
)

__all__ = ["IrsaSource", "IRSA_COLUMNS"]


#: Columns asked of IRSA ``fp_psc``.
IRSA_COLUMNS = ("ra", "dec", "glon", "glat", "designation", "j_m", "j_msigcom", "h_m",
                "h_msigcom", "k_m", "k_msigcom", "ph_qual", "cc_flg")


class IrsaSource(TiledRemoteSource):
    """
    2MASS Point Source Catalogue from IRSA's TAP service, tile by tile.

    Each tile is one synchronous ADQL query on ``fp_psc`` (``CONTAINS(POINT,
    CIRCLE)``) through pyvo's TAP client (as `astroquery.ipac.irsa.IrsaClass.query_tap`
    does), with ``MAXREC``
    set to ``row_limit``; an answer that reaches it or carries
    ``QUERY_STATUS=OVERFLOW`` splits the tile, as in `VizierSource`. pyvo sends
    its requests without a timeout: this source gives its session one.
    Positions are IRSA's ``glon``, ``glat``. pyvo bypasses astroquery's
    cache, so this source keeps complete answers itself (ECSV files in
    ``<cnnext cache>/irsa``, keyed by service, query and row limit); truncated
    and failed answers are never kept, and an unreadable cached answer is
    fetched again.

    Parameters
    ----------
    tap_url : str, optional
        TAP endpoint; default ``conf.irsa_tap_url``, or astroquery's IRSA
        default when that is empty.
    table : str
        Default ``"fp_psc"``.
    row_limit, tile_order, timeout, max_retries, retry_backoff : optional
        As for `VizierSource`.
    cache : bool, optional
        Keep complete answers on disk; default ``conf.use_cache``.

    Examples
    --------
    >>> from cnnext.photometry import IrsaSource
    >>> source = IrsaSource(tap_url="https://irsa.ipac.caltech.edu/TAP")
    >>> source.key
    'irsa:https://irsa.ipac.caltech.edu/TAP:fp_psc'
    >>> print(source.adql(280.0, -5.0, 0.5))  # doctest: +NORMALIZE_WHITESPACE
    SELECT ra, dec, glon, glat, designation, j_m, j_msigcom, h_m, h_msigcom, k_m,
    k_msigcom, ph_qual, cc_flg FROM fp_psc WHERE CONTAINS(POINT('ICRS', ra, dec),
    CIRCLE('ICRS', 280.0000000000, -5.0000000000, 0.5000000000)) = 1
    """

    def __init__(self, *, tap_url=None, table="fp_psc", row_limit=None, tile_order=None,
                 timeout=None, max_retries=None, retry_backoff=None, cache=None):
        super().__init__(tile_order=tile_order, max_retries=max_retries,
                         retry_backoff=retry_backoff)
        import requests
        from astroquery.ipac.irsa import IrsaClass
        from pyvo.dal import TAPService

        self.tap_url = tap_url or conf.irsa_tap_url or IrsaClass().tap_url
        self.table = table
        self.row_limit = row_limit
        self.timeout = timeout
        self.cache = cache
        self.key = f"irsa:{self.tap_url}:{table}"
        # pyvo's TAP client on cnnext's own session, whose time-out it sets (astroquery's
        # IrsaClass.query_tap makes the same call on a private session)
        session = requests.Session()
        session.headers["User-Agent"] = f"cnnext/{__version__} {session.headers['User-Agent']}"
        self._adapter = configure_session(session, timeout=self._timeout())
        self._tap = TAPService(baseurl=self.tap_url, session=session)

    def _timeout(self):
        return float(conf.timeout if self.timeout is None else self.timeout)

    def adql(self, ra, dec, radius):
        """Return the ADQL query for an ICRS cone (degrees)."""
        return (f"SELECT {', '.join(IRSA_COLUMNS)} FROM {self.table} WHERE "
                f"CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra:.10f}, {dec:.10f}, "
                f"{radius:.10f})) = 1")

    def _cache_file(self, query, limit):
        """Where the answer to ``query`` is kept, or `None` when caching is off."""
        if not (conf.use_cache if self.cache is None else self.cache):
            return None
        digest = hashlib.sha256(f"{self.tap_url}\n{limit}\n{query}".encode()).hexdigest()
        return cache_dir() / "irsa" / f"{digest[:40]}.ecsv"

    @staticmethod
    def _read_cached(path):
        from astropy.table import Table

        try:
            return Table.read(path, format="ascii.ecsv")
        except Exception as exc:  # a damaged file: any parser error
            warnings.warn(f"cached IRSA answer {str(path)!r} is unreadable ({exc}); "
                          f"fetching it again", CnnextWarning)
            path.unlink(missing_ok=True)
            return None

    @staticmethod
    def _write_cached(path, table):
        path.parent.mkdir(parents=True, exist_ok=True)
        text = io.StringIO()
        table.write(text, format="ascii.ecsv")
        atomic_write_bytes(path, text.getvalue().encode())

    def _fetch_cone(self, ra, dec, radius, what):
        from pyvo.dal import DALOverflowWarning

        limit = int(conf.row_limit if self.row_limit is None else self.row_limit)
        query = self.adql(ra, dec, radius)
        cached = self._cache_file(query, limit)
        if cached is not None and cached.exists():
            table = self._read_cached(cached)
            if table is not None:
                return answer_to_stars(table, False, what), False
        self._adapter.default_timeout = self._timeout()
        with warnings.catch_warnings():
            # truncation is detected below from the query status
            warnings.simplefilter("ignore", DALOverflowWarning)
            result = self._tap.run_sync(query, language="ADQL", maxrec=limit if limit > 0 else None)
        status = str(result.query_status or "OK").upper()
        if status not in ("OK", "OVERFLOW"):
            raise PermanentError(f"IRSA query status {status}")
        table = result.to_table()
        truncated = status == "OVERFLOW" or (limit > 0 and len(table) >= limit)
        stars = answer_to_stars(table, truncated, what)
        if cached is not None and not truncated:
            self._write_cached(cached, table)
        return stars, truncated
