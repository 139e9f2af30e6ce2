import gc
import sys

from twin.cli import main

if __name__ == "__main__":  # worker processes (Dask, multiprocessing) import this module too
    code = main()
    # The command is done (files written and closed): leave the interpreter's last full garbage
    # collection of the simulation stack's objects undone, seconds a stopped server spent exiting.
    gc.freeze()
    sys.exit(code)
