# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Helpers for testing code that uses cnnext: fake servers, tiny models."""
