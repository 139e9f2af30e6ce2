"""What the twin and its clients share, and nothing else: the wire format (:mod:`twin.common.wire`),
the instruments' vocabularies (:mod:`~twin.common.afm_vocabulary`, :mod:`~twin.common.tem_vocabulary`),
windows, defects and pixel grids (:mod:`~twin.common.geometry`), the errors that cross the network
(:mod:`~twin.common.errors`) and the NetCDF attribute conventions (:mod:`~twin.common.cf`).

Nothing here imports the simulation (sample, physics, instruments, server, scenarios) or the clients,
so a client machine needs neither abTEM nor ASE to drive a remote twin; ``tests/test_layers.py`` keeps
it so.
"""
