"""The live view: a web page served next to the instruments (``twin serve``), showing the latest images,
a map of the sample, read-only instrument panels and, with scenarios, the scoreboard (only the scoreboard
when the instances live on Dask workers: ``twin serve --workers``).

The instruments publish what they acquire on a :class:`~twin.server.live.board.Board` (a reference, no
copy); the web server reads the board and lock-free peeks of the settings, never an instrument's lock.
Starlette and uvicorn are imported only when the page is served (:mod:`twin.server.live.web`).
"""
