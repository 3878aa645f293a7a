# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
What cnnext keeps on disk, one module per kind of file.

- `cnnext.io.core`: the one atomic writer, the work-directory lock and the cache root
  that every other module here uses;
- `cnnext.io.mapfile`: FITS map files, with checksums;
- `cnnext.io.cache`: the persistent cache of computed sightline profiles;
- `cnnext.io.checkpoint`: the checkpoint directory of a map build;
- `cnnext.io.catalogue`: the Parquet catalogues written by `~cnnext.fetch.fetch_region`.

The in-memory profiles these files hold are a `~cnnext.profiles.ProfileMap`.
"""
