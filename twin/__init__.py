"""Digital-twin microscope server: a TEM and an AFM imaging one shared, simulated sample."""

from importlib.metadata import PackageNotFoundError, version

from twin.common.fft_threads import size_ducc0_pool

size_ducc0_pool()  # before ducc0 is imported: the same FFT threads, so the same bits, in every process

try:
    __version__ = version("microscope-twin")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
