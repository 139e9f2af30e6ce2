import sys

from twin.cli import main

if __name__ == "__main__":  # worker processes (Dask, multiprocessing) import this module too
    sys.exit(main())
