"""The TEM's vocabulary: enumerations named as in AutoScript TEM; values behave as plain strings (or ints
for sizes). The client hands them to the server as their values, which the server checks against."""

from __future__ import annotations

from enum import Enum, IntEnum


class _StrEnum(str, Enum):
    def __str__(self) -> str:
        return self.value


class CameraType(_StrEnum):
    FLUCAM = "Flucam"
    BM_CETA = "BM-Ceta"
    EF_CETA = "EF-Ceta"
    BM_FALCON = "BM-Falcon"
    EF_FALCON = "EF-Falcon"
    BM_EMPAD = "BM-Empad"
    SH_EMPAD = "SH-Empad"
    EF_EMPAD = "EF-Empad"
    EF_CCD = "EF-CCD"


class DetectorType(_StrEnum):
    HAADF = "HAADF"
    ADF = "ADF"
    BF = "BF"
    ABF = "ABF"
    BF_S = "BF-S"
    DF_S = "DF-S"


class OpticalMode(_StrEnum):
    TEM = "Tem"
    STEM = "Stem"


class ProjectorMode(_StrEnum):
    IMAGING = "Imaging"
    DIFFRACTION = "Diffraction"


class ImageSize(IntEnum):
    """Square read-out sizes; plain ints are accepted wherever a size is."""

    PRESET_64 = 64
    PRESET_128 = 128
    PRESET_256 = 256
    PRESET_512 = 512
    PRESET_1024 = 1024
    PRESET_2048 = 2048
    PRESET_4096 = 4096


class RegionCoordinateSystem(_StrEnum):
    RELATIVE = "Relative"  # fractions 0..1 of the scan field
    PIXELS = "Pixels"  # pixels of the scan generator's full 4096-pixel frame


class FixedReadoutArea(_StrEnum):
    FULL = "Full"
    HALF = "Half"
    QUARTER = "Quarter"


class OptiStemMethod(_StrEnum):
    C1 = "C1"
    C1_A1 = "C1A1"
    B2_A2 = "B2A2"


class StageHolderType(_StrEnum):
    SINGLE_TILT = "SingleTilt"
    DOUBLE_TILT = "DoubleTilt"


class EdsDetectorType(_StrEnum):
    SUPER_X = "SuperX"
    ULTRA_X = "UltraX"


class ExposureTimeType(_StrEnum):
    LIVE_TIME = "LiveTime"  # counting time: the acquisition lasts longer by the dead time
    REAL_TIME = "RealTime"  # clock time


class SpectrumEncoding(_StrEnum):
    UINT32 = "UInt32"


class ApertureMechanismType(_StrEnum):
    C1 = "C1"
    C2 = "C2"
    C3 = "C3"
    OBJECTIVE = "Objective"
    SA = "SA"
    TRANSFER_LENS = "TransferLens"
