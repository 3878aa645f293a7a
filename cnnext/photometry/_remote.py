# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Machinery shared by the remote photometry sources: retries with back-off, error
classification, HTTP session settings, and tile-by-tile fetching with splitting of
truncated tiles.
"""

import contextvars
import http.client
import logging
import threading
import time
from collections import deque

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import vstack
from astropy_healpix import HEALPix, level_to_nside
from requests import exceptions as rexc
from requests.adapters import HTTPAdapter

from ..config import conf
from ..exceptions import PhotometryError
from ..healpix import check_order, cover_cells, lonlat_to_cells, parent_cells
from ..io.core import cache_root
from ..stars import PhotometrySource, empty_star_table, empty_with_cells

__all__ = []

log = logging.getLogger(__name__)

#: Deepest split below the order of the requested cells before giving up.
_MAX_EXTRA_SPLITS = 8

#: When the request running in this thread must be over (`time.monotonic`), or None:
#: `SessionAdapter` shortens the timeout of each HTTP call to what is left.
_DEADLINE = contextvars.ContextVar("cnnext_photometry_deadline", default=None)

#: The last error of a request that failed for good ends with this: the way around
#: a service that is down or too slow.
LOCAL_CATALOGUE_HINT = (
    "To work without this service, use a local catalogue: download the region once with "
    "`cnnext fetch REGION -o DIR` (cnnext.fetch.fetch_region) and pass `--source DIR`, "
    "or pass a table of 2MASS stars you have (`--source FILE`, "
    "cnnext.photometry.TableSource)")


class TransientError(Exception):
    """A failure worth retrying: server error, cut-off or garbled answer."""


class PermanentError(Exception):
    """A failure that retrying cannot fix: the server rejected the request."""


def cache_dir():
    """Return cnnext's cache directory (`cnnext.io.core.cache_root`), created if needed."""
    path = cache_root()
    path.mkdir(parents=True, exist_ok=True)
    return path


class SessionAdapter(HTTPAdapter):
    """
    HTTP adapter that gives every request a default timeout and CA bundle.

    pyvo's TAP requests pass no timeout at all, and astroquery's pass
    ``verify=True`` explicitly; mounting this adapter on a client's session is the
    one place where both can be set for all of that client's requests.
    """

    def __init__(self, *, timeout=None, verify=None):
        super().__init__()
        self.default_timeout = timeout
        self.default_verify = verify

    def send(self, request, stream=False, timeout=None, verify=True, cert=None,
             proxies=None):
        if timeout is None:
            timeout = self.default_timeout
        deadline = _DEADLINE.get()
        if deadline is not None and not isinstance(timeout, tuple):
            # the whole request, retries included, ends by its deadline (conf.max_wait)
            left = max(deadline - time.monotonic(), 0.05)
            timeout = left if timeout is None else min(float(timeout), left)
        # a path from REQUESTS_CA_BUNDLE arrives here in place of True: ours wins
        if verify is not False and self.default_verify is not None:
            verify = self.default_verify
        return super().send(request, stream=stream, timeout=timeout, verify=verify,
                            cert=cert, proxies=proxies)


def configure_session(session, *, timeout, verify=None):
    """Mount a `SessionAdapter` on ``session`` for http and https URLs."""
    adapter = SessionAdapter(timeout=timeout, verify=verify)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return adapter


_TRANSIENT_TYPES = (rexc.ConnectionError, rexc.Timeout, rexc.ChunkedEncodingError,
                    rexc.ContentDecodingError, http.client.IncompleteRead,
                    ConnectionError, TimeoutError, TransientError)


def is_transient(exc):
    """
    Return True for errors worth retrying, False for permanent ones, None otherwise.

    ``None`` means "not a network error we know": such exceptions propagate as
    they are (they are bugs, not outages).
    """
    if isinstance(exc, (PermanentError, rexc.SSLError, rexc.InvalidURL,
                        rexc.MissingSchema)):
        # a certificate that does not verify will not verify next time either
        return False
    if isinstance(exc, _TRANSIENT_TYPES):
        return True
    if isinstance(exc, rexc.HTTPError) and exc.response is not None:
        return http_status_is_transient(exc.response.status_code)
    try:
        from pyvo.dal import DALFormatError, DALQueryError, DALServiceError
    except ImportError:  # pragma: no cover - pyvo comes with astroquery
        return None
    if isinstance(exc, DALQueryError):
        return False
    if isinstance(exc, DALServiceError):
        if exc.code:
            return http_status_is_transient(exc.code)
        return True
    if isinstance(exc, DALFormatError):
        # pyvo wraps connection errors raised while reading in a DALFormatError
        return True
    return None


def http_status_is_transient(code):
    """Server errors (5xx), 408 and 429 are worth retrying; other 4xx are not."""
    return code >= 500 or code in (408, 429)


class _WaitNotice:
    """
    Say that a request is still waiting for its answer, once it has waited
    ``conf.wait_notice`` seconds: a silent service must not look like a hung program.
    At most one such message a minute, so that a slow but working service does not
    flood the output.
    """

    _last = -float("inf")
    _lock = threading.Lock()

    def __init__(self, what, max_wait):
        self.what, self.max_wait = what, max_wait
        self.start = time.monotonic()
        after = float(conf.wait_notice)
        self._timer = threading.Timer(after, self._say) if after > 0 else None
        if self._timer is not None:
            self._timer.daemon = True
            self._timer.start()

    def _say(self):
        with _WaitNotice._lock:
            now = time.monotonic()
            if now - _WaitNotice._last < 60.0:
                return
            _WaitNotice._last = now
        limit = (f"gives up after cnnext.conf.max_wait = {self.max_wait:g} s"
                 if self.max_wait > 0 else "no time limit: cnnext.conf.max_wait = 0")
        log.warning("%s: no answer after %.1f s; still waiting (%s)", self.what,
                    now - self.start, limit)

    def stop(self):
        if self._timer is not None:
            self._timer.cancel()


def call_with_retries(func, what, *, max_retries=None, backoff=None, max_wait=None):
    """
    Call ``func()``; retry transient failures with exponential back-off.

    The whole call, attempts and back-off included, ends after ``max_wait``
    seconds: each HTTP request's timeout is cut to the time left, and no retry
    starts that could not finish in time. A request still waiting after
    ``conf.wait_notice`` seconds is reported (a ``logging`` warning).

    Parameters
    ----------
    func : callable
        The request; raises on failure.
    what : str
        Names the request (tile, sightline) in messages.
    max_retries : int, optional
        Attempts in all; default ``conf.max_retries``.
    backoff : float, optional
        First delay in seconds, doubled at each retry; default ``conf.retry_backoff``.
    max_wait : float, optional
        Longest time in all, in seconds (0: no limit); default ``conf.max_wait``.

    Raises
    ------
    PhotometryError
        After the last failed attempt or when the time is up (the message says how
        to work from a local catalogue instead), or at once for a rejected request.
    """
    attempts = max(1, int(conf.max_retries if max_retries is None else max_retries))
    delay = float(conf.retry_backoff if backoff is None else backoff)
    max_wait = float(conf.max_wait if max_wait is None else max_wait)
    start = time.monotonic()
    deadline = start + max_wait if max_wait > 0 else None
    token = _DEADLINE.set(deadline)
    notice = _WaitNotice(what, max_wait)
    try:
        for attempt in range(1, attempts + 1):
            try:
                return func()
            except Exception as exc:
                transient = is_transient(exc)
                if transient is None:
                    raise
                if not transient:
                    raise PhotometryError(f"{what}: the server rejected the request: "
                                          f"{_describe(exc)}") from exc
                out_of_time = deadline is not None and time.monotonic() + delay >= deadline
                if attempt == attempts or out_of_time:
                    waited = time.monotonic() - start
                    why = (f"gave up after {waited:.0f} s and {attempt} attempt(s) "
                           f"(cnnext.conf.max_wait = {max_wait:g} s)" if out_of_time else
                           f"failed after {attempt} attempt(s) in {waited:.0f} s")
                    error = PhotometryError(f"{what}: {why}; last error: {_describe(exc)}. "
                                            f"{LOCAL_CATALOGUE_HINT}")
                    # the time is up: callers must not start the whole wait again
                    error.out_of_time = out_of_time
                    raise error from exc
                log.info("%s: attempt %d/%d failed (%s); retrying in %.3g s", what, attempt,
                         attempts, _describe(exc), delay)
                time.sleep(delay)
                delay *= 2
    finally:
        notice.stop()
        _DEADLINE.reset(token)


def _describe(exc):
    text = str(exc).strip().splitlines()
    text = text[0] if text else ""
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def tile_cones(tiles, tile_order):
    """
    Return ICRS cones ``(ra, dec, radius)`` in degrees that cover nested Galactic tiles.

    The radius reaches the farthest of densely sampled boundary points, with a
    margin for the curvature of HEALPix edges between samples.
    """
    hp = HEALPix(nside=level_to_nside(tile_order), order="nested")
    tiles = np.atleast_1d(np.asarray(tiles, dtype=np.int64))
    lon, lat = hp.healpix_to_lonlat(tiles)
    blon, blat = hp.boundaries_lonlat(tiles, step=8)
    centre = SkyCoord(lon, lat, frame="galactic")
    edge = SkyCoord(blon, blat, frame="galactic")
    sep = centre[:, None].separation(edge).to_value(u.deg).max(axis=1)
    radius = sep * 1.01 + 1.0 / 3600.0
    icrs = centre.icrs
    return icrs.ra.to_value(u.deg), icrs.dec.to_value(u.deg), radius


def dedupe(stars):
    """Drop repeated stars: same 2MASS designation, or same exact position if none."""
    if len(stars) < 2:
        return stars
    if "designation" in stars.colnames and np.all(stars["designation"] != ""):
        _, first = np.unique(np.asarray(stars["designation"]), return_index=True)
    else:
        pos = np.stack([np.asarray(stars["l"]), np.asarray(stars["b"])], axis=1)
        _, first = np.unique(pos, axis=0, return_index=True)
    if len(first) == len(stars):
        return stars
    return stars[np.sort(first)]



def answer_to_stars(table, truncated, what):
    """
    The star table (with ``designation``) of one remote answer, logged with its size.

    Shared by the remote sources, whose answers differ only in column names.
    """
    from .table import to_star_table

    if len(table) == 0:
        stars = empty_star_table()
        stars["designation"] = np.zeros(0, dtype="U16")
    else:
        stars = to_star_table(table, keep_designation=True)
    log.debug("%s: %d rows%s", what, len(stars), " (truncated)" if truncated else "")
    return stars


class TiledRemoteSource(PhotometrySource):
    """
    Base of remote sources: cells are grouped into tiles, one request per tile.

    Subclasses implement ``_fetch_cone(ra, dec, radius, what)``, one attempt at
    the stars of an ICRS cone (degrees), returning ``(stars, truncated)`` where
    ``stars`` went through `~cnnext.photometry.to_star_table` (with designations)
    and ``truncated`` says the server did not send every row. They raise
    `TransientError`/`PermanentError` (or the client's own exceptions).
    """

    def __init__(self, *, tile_order=None, max_retries=None, retry_backoff=None):
        if tile_order is not None:
            tile_order = check_order(tile_order, "tile_order")
        self.tile_order = tile_order
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        #: Number of requests sent (attempts included) since the source was made.
        self.n_requests = 0

    def _default_tile_order(self, order):
        # tiles of <= ~3.4 deg^2 (order 5) hold a few 1e5 stars even in the plane
        return min(order, max(order - 2, 5))

    def _fetch_checked(self, ra, dec, radius, what):
        def attempt():
            self.n_requests += 1
            return self._fetch_cone(ra, dec, radius, what)

        return call_with_retries(attempt, what, max_retries=self.max_retries,
                                 backoff=self.retry_backoff)

    def _fetch_tiles(self, cells, order, tile_order, *, progress_bar=False, kind="tile"):
        """Fetch the stars of sorted unique ``cells`` tile by tile; returns a star table."""
        depth_limit = min(29, max(order, tile_order) + _MAX_EXTRA_SPLITS)
        tiles = cover_cells(cells, order, tile_order)
        queue = deque(zip(tiles.tolist(), [tile_order] * len(tiles),
                          zip(*tile_cones(tiles, tile_order))))
        parts = []
        from tqdm.auto import tqdm

        with tqdm(total=len(queue), disable=not progress_bar, unit=kind,
                  desc=f"{self.key}") as bar:
            while queue:
                tile, t_order, (ra, dec, radius) = queue.popleft()
                ra, dec, radius = float(ra), float(dec), float(radius)
                what = f"{self.key}: {kind} {tile} (order {t_order}, ICRS cone " \
                       f"{ra:.5f} {dec:+.5f} r={radius:.4f} deg)"
                stars, truncated = self._fetch_checked(ra, dec, radius, what)
                if truncated:
                    if t_order >= depth_limit:
                        raise PhotometryError(
                            f"{what}: answer still truncated at {len(stars)} rows after "
                            f"splitting to order {t_order}; raise row_limit")
                    children = _children_to_fetch(tile, t_order, cells, order)
                    log.info("%s truncated at %d rows: splitting into %d tiles", what,
                             len(stars), len(children))
                    queue.extend(zip(children.tolist(), [t_order + 1] * len(children),
                                     zip(*tile_cones(children, t_order + 1))))
                    bar.total += len(children) - 1
                    bar.refresh()
                    continue
                part = _select(stars, tile, t_order, cells, order)
                if len(part):
                    parts.append(part)
                bar.update(1)
        if not parts:
            return empty_with_cells()
        out = dedupe(vstack(parts, join_type="exact") if len(parts) > 1 else parts[0])
        out = out[np.argsort(out["cell"], kind="stable")]
        if "designation" in out.colnames:
            out.remove_column("designation")
        return out

    def fetch_cells(self, cells, order, *, progress_bar=False):
        """
        The stars of checked ``cells``, grouped into tiles at ``tile_order`` (one
        request per tile); a truncated answer splits its tile into four and asks
        again, so no star is silently lost.

        Raises
        ------
        PhotometryError
            A tile could not be fetched (after retries); the message names it.
        """
        tile_order = self.tile_order if self.tile_order is not None else \
            self._default_tile_order(order)
        return self._fetch_tiles(cells, order, tile_order, progress_bar=progress_bar)

    def fetch_cone(self, centre, radius_deg):
        """
        One request for the cone; if the answer is truncated, the cone is covered
        with HEALPix tiles that are fetched (and split) as in `fetch_cells`.
        """
        icrs = centre.icrs
        ra, dec = float(icrs.ra.to_value(u.deg)), float(icrs.dec.to_value(u.deg))
        what = f"{self.key}: cone {ra:.5f} {dec:+.5f} r={radius_deg:.4f} deg"
        stars, truncated = self._fetch_checked(ra, dec, radius_deg, what)
        if truncated:
            # cover the cone with cells about a quarter of its radius across
            order = int(np.clip(np.floor(np.log2(58.6 / (radius_deg / 4.0))), 0, 20))
            hp = HEALPix(nside=level_to_nside(order), order="nested", frame="galactic")
            cells = np.unique(hp.cone_search_skycoord(centre, radius_deg * u.deg * 1.02))
            stars = self._fetch_tiles(cells.astype(np.int64), order, order, kind="cone tile")
        elif "designation" in stars.colnames:
            stars = dedupe(stars)
            stars.remove_column("designation")
        return stars


def _children_to_fetch(tile, t_order, cells, order):
    children = (tile << 2) + np.arange(4, dtype=np.int64)
    if t_order + 1 <= order:
        # only the children that hold requested cells
        wanted = cover_cells(cells, order, t_order + 1)
        children = children[np.isin(children, wanted)]
    return children


def _select(stars, tile, t_order, cells, order):
    """Keep the stars of ``tile`` that lie in the requested ``cells``; add ``cell``."""
    depth = max(order, t_order)
    pix = lonlat_to_cells(stars["l"], stars["b"], depth)
    cell = parent_cells(pix, depth, order)
    keep = parent_cells(pix, depth, t_order) == tile
    pos = np.searchsorted(cells, cell)
    keep &= cells[np.minimum(pos, len(cells) - 1)] == cell
    out = stars[keep]
    out["cell"] = cell[keep].astype(np.int64)
    return out
