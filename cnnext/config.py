# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Configuration of cnnext through `astropy.config`."""

from astropy import config as _config

__all__ = ["Conf", "conf"]


class Conf(_config.ConfigNamespace):
    """
    Configuration parameters for `cnnext`.

    Read them as ``cnnext.conf.<name>`` inside functions, change them for a block
    with ``cnnext.conf.set_temp("<name>", value)``.

    Examples
    --------
    >>> import cnnext
    >>> cnnext.conf.vizier_catalog
    'II/246/out'
    >>> with cnnext.conf.set_temp("batch_size", 64):
    ...     print(cnnext.conf.batch_size)
    64
    """

    vizier_server = _config.ConfigItem(
        "vizier.cds.unistra.fr", "VizieR mirror used by VizierSource.")
    vizier_catalog = _config.ConfigItem(
        "II/246/out", "VizieR table of the 2MASS Point Source Catalogue.")
    irsa_tap_url = _config.ConfigItem(
        "", "IRSA TAP endpoint; empty means astroquery's default.")
    timeout = _config.ConfigItem(
        60.0, "Timeout of one photometry request, in seconds.", cfgtype="float")
    max_retries = _config.ConfigItem(
        4, "Attempts for one photometry request before giving up.", cfgtype="integer")
    max_wait = _config.ConfigItem(
        120.0, "Longest wait for one photometry request, all attempts and back-off "
        "included, in seconds (0: no limit).", cfgtype="float")
    wait_notice = _config.ConfigItem(
        5.0, "Seconds without an answer after which a photometry request says it is "
        "still waiting (0: never).", cfgtype="float")
    retry_backoff = _config.ConfigItem(
        1.0, "First back-off delay between retries, in seconds; doubles each retry.",
        cfgtype="float")
    row_limit = _config.ConfigItem(
        200000, "Rows asked for in one VizieR request; a full answer splits the tile.",
        cfgtype="integer")
    use_cache = _config.ConfigItem(
        True, "Keep astroquery answers in cnnext's cache directory.", cfgtype="boolean")
    cache_dir = _config.ConfigItem(
        "", "Directory of cnnext caches; empty means astropy's cache dir + 'cnnext'.")
    batch_size = _config.ConfigItem(
        256, "Number of CMDs sent to the network in one batch.", cfgtype="integer")


conf = Conf()
