# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
2MASS photometry from VizieR (catalogue ``II/246/out``) through astroquery.
"""

import hashlib
import io
import warnings

import astropy.units as u
import requests
from astropy.coordinates import SkyCoord

from .. import __version__
from ..config import conf
from ..exceptions import CnnextWarning
from ..io.core import atomic_write_bytes
from ._remote import (
    PermanentError,
    TiledRemoteSource,
    TransientError,
    answer_to_stars,
    cache_dir,
    configure_session,
    http_status_is_transient,
)

__all__ = ["VizierSource", "VIZIER_COLUMNS"]


#: Columns asked of VizieR ``II/246/out``.
VIZIER_COLUMNS = ("RAJ2000", "DEJ2000", "2MASS", "Jmag", "e_Jmag", "Hmag", "e_Hmag",
                  "Kmag", "e_Kmag", "Qflg", "Cflg")


class VizierSource(TiledRemoteSource):
    """
    2MASS Point Source Catalogue from VizieR, tile by tile.

    Cells are grouped into tiles at ``tile_order`` and each tile is fetched with
    one cone request (`astroquery.vizier.VizierClass.query_region`) with an
    explicit ``row_limit``; stars are then assigned to cells from their Galactic
    position (computed from ``RAJ2000``, ``DEJ2000`` taken as ICRS). An answer with
    as many rows as ``row_limit``, or flagged ``OVERFLOW`` by VizieR, is
    truncated: its tile is split into its four children and asked again, so dense
    Galactic-plane fields never lose stars silently.

    Transient failures (HTTP 5xx, connection errors, time-outs, cut-off or
    garbled answers) are retried with exponential back-off; a request that VizieR
    rejects (HTTP 4xx, ``QUERY_STATUS=ERROR``) raises at once. Either way the
    `~cnnext.exceptions.PhotometryError` names the tile.

    Parameters
    ----------
    server : str, optional
        VizieR mirror, ``host`` or ``host:port``; default ``conf.vizier_server``.
    catalog : str, optional
        Default ``conf.vizier_catalog`` (``II/246/out``).
    row_limit : int, optional
        Rows asked for per request; default ``conf.row_limit``. ``-1`` means
        unlimited (only VizieR's ``OVERFLOW`` status then detects truncation).
    tile_order : int, optional
        HEALPix order of the tiles; default two orders coarser than the cells
        (16 cells per tile) but no coarser than order 5 (about 3.4 deg²), nor
        finer than the cells.
    timeout : float, optional
        Seconds per request; default ``conf.timeout``.
    cache : bool, optional
        Keep answers (the VOTables) in cnnext's cache directory; default
        ``conf.use_cache``. Failed and truncated answers are never kept.
    verify : bool or str, optional
        TLS verification as in `requests`: `False`, or the path of a CA bundle
        (used with local test servers). Default: system certificates.
    max_retries, retry_backoff : optional
        Attempts per request and the first back-off delay (s); default
        ``conf.max_retries`` and ``conf.retry_backoff``.

    Examples
    --------
    >>> from cnnext.photometry import VizierSource
    >>> source = VizierSource(server="vizier.cds.unistra.fr", row_limit=100000)
    >>> source.key
    'vizier:vizier.cds.unistra.fr:II/246/out'
    >>> stars = source.query_cells([121430], order=7)  # doctest: +REMOTE_DATA
    """

    def __init__(self, *, server=None, catalog=None, row_limit=None, tile_order=None,
                 timeout=None, cache=None, verify=None, max_retries=None,
                 retry_backoff=None):
        super().__init__(tile_order=tile_order, max_retries=max_retries,
                         retry_backoff=retry_backoff)
        from astroquery.vizier import VizierClass

        self.server = server or conf.vizier_server
        self.catalog = catalog or conf.vizier_catalog
        self.row_limit = row_limit
        self.timeout = timeout
        self.cache = cache
        self.key = f"vizier:{self.server}:{self.catalog}"
        limit = int(conf.row_limit if row_limit is None else row_limit)
        # astroquery builds the request (get_query_payload); cnnext sends it on its own
        # session, whose time-outs and CA bundle it sets, and keeps the good answers
        self._vizier = VizierClass(columns=list(VIZIER_COLUMNS), catalog=self.catalog,
                                   vizier_server=self.server, row_limit=limit,
                                   timeout=self._timeout())
        self._session = requests.Session()
        self._session.headers["User-Agent"] = (f"cnnext/{__version__} "
                                               f"{self._session.headers['User-Agent']}")
        self._adapter = configure_session(self._session, timeout=self._timeout(),
                                          verify=verify)
        self._url = f"https://{self.server}/viz-bin/votable"

    def _timeout(self):
        return float(conf.timeout if self.timeout is None else self.timeout)

    def _row_limit(self):
        return int(conf.row_limit if self.row_limit is None else self.row_limit)

    def _use_cache(self):
        return bool(conf.use_cache if self.cache is None else self.cache)

    def _cache_file(self, payload):
        """Where the answer to ``payload`` is kept, or `None` when caching is off."""
        if not bool(conf.use_cache if self.cache is None else self.cache):
            return None
        digest = hashlib.sha256(f"{self._url}\n{payload}".encode()).hexdigest()
        return cache_dir() / "vizier" / f"{digest[:40]}.xml"

    def _fetch_cone(self, ra, dec, radius, what):
        limit = self._row_limit()
        self._vizier.ROW_LIMIT = limit
        self._adapter.default_timeout = self._timeout()
        payload = self._vizier.query_region_async(
            SkyCoord(ra * u.deg, dec * u.deg, frame="icrs"), radius=radius * u.deg,
            catalog=self.catalog, frame="icrs", get_query_payload=True)
        cache = self._cache_file(payload)
        answer = None
        if cache is not None and cache.is_file():
            try:
                answer = _parse_votable_answer(200, "OK", str(cache), cache.read_bytes(),
                                               self.catalog)
            except (OSError, TransientError, PermanentError) as exc:
                warnings.warn(f"cached VizieR answer {str(cache)!r} is unreadable ({exc}); "
                              f"fetching it again", CnnextWarning)
                cache.unlink(missing_ok=True)
        if answer is None:
            response = self._session.post(self._url, data=payload, timeout=self._timeout())
            answer = _parse_votable_answer(response.status_code, response.reason,
                                           response.url, response.content, self.catalog)
            table, status = answer
            truncated = status == "OVERFLOW" or (limit > 0 and len(table) >= limit)
            if cache is not None and not truncated:
                # complete answers only: failed and truncated ones are asked again
                cache.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(cache, response.content)
        table, status = answer
        truncated = status == "OVERFLOW" or (limit > 0 and len(table) >= limit)
        return answer_to_stars(table, truncated, what), truncated


def _parse_votable_answer(code, reason, url, body, catalog):
    """
    Check and parse a VizieR answer (HTTP status ``code`` and ``reason``, ``url``,
    ``body`` bytes): returns ``(table, query_status)``.

    Raises `TransientError` for 5xx answers and bodies that are not complete
    VOTables, `PermanentError` for 4xx answers and VizieR ``ERROR`` statuses.
    """
    from astropy.io import votable
    from astropy.io.votable.exceptions import VOWarning
    from astropy.table import Table

    if code >= 400:
        snippet = body[:300].decode("utf-8", "replace").strip()
        error = TransientError if http_status_is_transient(code) else PermanentError
        raise error(f"HTTP {code} {reason} from {url}: {snippet}")
    if not body.lstrip()[:5] == b"<?xml":
        raise TransientError(f"answer from {url} is not a VOTable "
                             f"(starts with {body[:40]!r})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", VOWarning)
            vot = votable.parse(io.BytesIO(body), verify="ignore")
    except Exception as exc:
        raise TransientError(f"answer from {url} is not a complete VOTable "
                             f"({len(body)} bytes): {exc}") from None
    status = "OK"
    infos = list(vot.infos)
    resources = list(vot.resources)
    while resources:
        resource = resources.pop()
        infos.extend(resource.infos)
        resources.extend(resource.resources)
    tables = list(vot.iter_tables())
    for table in tables:
        # VOTable 1.4 also allows the status after the data, inside TABLE
        infos.extend(getattr(table, "infos", []))
    for info in infos:
        name = (info.name or "").upper()
        value = (info.value or "").upper()
        if name == "QUERY_STATUS" and value in ("ERROR", "OVERFLOW"):
            if value == "ERROR":
                raise PermanentError(f"VizieR error: {(info.content or '').strip()}")
            status = "OVERFLOW"
        elif name == "ERROR":
            raise PermanentError(f"VizieR error: {info.value} "
                                 f"{(info.content or '').strip()}".strip())
    chosen = [t for t in tables if t.name == catalog] or tables
    if not chosen:
        return Table(), status
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VOWarning)
        table = chosen[0].to_table(use_names_over_ids=True)
    return table, status
