"""The AFM: a Nanosurf-like instrument over the shared sample."""

from twin.common.afm_vocabulary import (
    CHANNELS,
    ApproachStatus,
    CantileverGUID,
    DataConversion,
    DataFilter,
    OperatingMode,
    ScanChannel,
    ScanGroupID,
    StageState,
)
from twin.instruments.afm.hardware import AfmHardware
from twin.instruments.afm.instrument import AfmInstrument

__all__ = ["CHANNELS", "AfmHardware", "AfmInstrument", "ApproachStatus", "CantileverGUID", "DataConversion",
           "DataFilter", "OperatingMode", "ScanChannel", "ScanGroupID", "StageState"]
