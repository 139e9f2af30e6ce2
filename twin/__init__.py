"""Digital-twin microscope server: a TEM and an AFM imaging one shared, simulated sample."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("microscope-twin")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
