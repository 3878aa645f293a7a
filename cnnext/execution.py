# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
onnxruntime execution providers: CUDA when onnxruntime-gpu can really use a GPU,
otherwise the CPU, decided quietly (no error output on CPU-only machines).
"""

import ctypes
import ctypes.util
import sys
from functools import lru_cache

__all__ = ["resolve_providers", "cuda_device_count"]


@lru_cache(maxsize=1)
def cuda_device_count():
    """Return the number of CUDA devices the driver reports; 0 without a driver (quietly)."""
    names = ["nvcuda.dll"] if sys.platform == "win32" else ["libcuda.so.1", "libcuda.so"]
    found = ctypes.util.find_library("cuda")
    if found:
        names.append(found)
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        try:
            if lib.cuInit(0) == 0 and lib.cuDeviceGetCount(ctypes.byref(count)) == 0:
                return count.value
        except AttributeError:
            pass
        return 0
    return 0


def resolve_providers(providers="auto"):
    """
    Return the onnxruntime execution providers to ask for.

    ``"auto"`` gives ``["CUDAExecutionProvider", "CPUExecutionProvider"]`` when the
    installed onnxruntime has CUDA support *and* the CUDA driver reports a device,
    else ``["CPUExecutionProvider"]`` — decided without creating a CUDA session, so
    CPU-only machines see no error output. ``"cpu"`` and ``"cuda"`` are shortcuts;
    a list is passed through.
    """
    import onnxruntime as ort

    available = ort.get_available_providers()
    if isinstance(providers, str):
        key = providers.lower()
        if key == "auto":
            if "CUDAExecutionProvider" in available and cuda_device_count() > 0:
                return ["CUDAExecutionProvider", "CPUExecutionProvider"]
            return ["CPUExecutionProvider"]
        if key == "cpu":
            return ["CPUExecutionProvider"]
        if key in ("cuda", "gpu"):
            if "CUDAExecutionProvider" not in available:
                raise ValueError("providers='cuda' but this onnxruntime has no CUDA support "
                                 "(install onnxruntime-gpu)")
            return ["CUDAExecutionProvider", "CPUExecutionProvider"]
        raise ValueError(f"providers must be 'auto', 'cpu', 'cuda' or a list, got {providers!r}")
    providers = list(providers)
    unknown = [p for p in providers if (p[0] if isinstance(p, tuple) else p) not in available]
    if unknown:
        raise ValueError(f"providers {unknown} are not available; this onnxruntime has "
                         f"{available}")
    return providers
