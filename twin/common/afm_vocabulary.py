"""The AFM's vocabulary: the vendor's enumerations (numbered as the vendor numbers them) and channels."""

from __future__ import annotations


class ApproachStatus:
    """Values of ``Approach.Status`` (the vendor's numbering)."""

    Standby = 0
    Initializing = 1
    Approaching = 2
    ApproachDone = 3
    ApproachAborted = 4
    MoveToParkPos = 5
    ParkPosReached = 6
    MoveAway = 7
    MoveToward = 8
    SensorFailed = 9
    LimitFailed = 10
    CalibrationFailed = 12
    UserAbort = 13
    MaxOut = 14
    Initdone = 15
    AdjustingTipPos = 16


class ScanGroupID:
    Forward = 0
    Backward = 1


class ScanChannel:
    """Scan channels: the z-controller's input (deflection in V in static modes, amplitude in % of the
    free amplitude in dynamic ones), topography, phase (dynamic modes) and lateral force (contact)."""

    Deflection_or_ZCtrlIn = 0
    Topography = 1
    Phase = 2
    LateralForce = 3


CHANNELS = {ScanChannel.Deflection_or_ZCtrlIn: ("Deflection_or_ZCtrlIn", "V or %"),
            ScanChannel.Topography: ("Topography", "m"),
            ScanChannel.Phase: ("Phase", "deg"),
            ScanChannel.LateralForce: ("LateralForce", "V")}


class OperatingMode:
    """Values of ``OperatingMode.OperatingMode`` (the vendor's numbering)."""

    User, STM, StaticAFM, DynamicAFM, PhaseContrast, ForceModulation = range(6)
    SpreadingResistivity, ContPhase, DeltaF, LateralForce = range(6, 10)


SIMULATED_MODES = (OperatingMode.StaticAFM, OperatingMode.DynamicAFM, OperatingMode.PhaseContrast,
                   OperatingMode.LateralForce)
STATIC_MODES = (OperatingMode.StaticAFM, OperatingMode.LateralForce)


class DataFilter:
    RAW, MeanFit, LineFit, DerivedData, ParabolaFit, PolynomialFit = range(6)


class DataConversion:
    Binary16, Physical, Binary32 = range(3)


class _AnyName(type):
    def __getattr__(cls, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        return f"twin-cantilever:{name}"


class CantileverGUID(metaclass=_AnyName):
    """Cantilever identifiers by the vendor's names (``CantileverGUID.Dyn190Al``); every name resolves, to
    a twin identifier (the vendor's GUID strings are not reproduced)."""


class StageState:
    """Values of ``Stage.GetState``."""

    IdleUnreferenced = 1
    Idle = 2
    Moving = 3


# --- spectroscopy (``application.Spec``), numbered as the vendor numbers them ---------------------
class SpecModuleLevel:
    Standard = 0
    Standart = 0  # the spelling of the vendor's 1.0-1.2 packages, which its notebooks still use
    Advanced = 1


class SpecGroupNo:
    Forward = 0
    Backward = 1
    ForwardPause = 2
    BackwardPause = 3


class SpecChannel:
    Deflection_or_ZCtrlIn = 0
    Topography = 1


class SpecModulatedOutput:
    ZAxis = 0
    TipVoltage = 1
    UserOut1 = 2
    UserOut2 = 3


class SpecRepetitionMode:
    List = 0  # the whole list, again and again
    Position = 1  # every position ``Repetition`` times before the next


class SpecEndMode:
    KeepLastZPos = 0
    Approached = 1


class SpecModulationMode:
    FixedLength = 0
    StopByValue = 1


class SpecPauseMode:
    KeepLastZPos = 0
    ZControllerActive = 1


# --- the rest of the instrument --------------------------------------------------------------------
class SystemZAxisIdleMode:
    """Values of ``System.SystemStateIdleZAxisMode``: what z does while the AFM is idle."""

    ZControllerActive = 0
    RetractTip = 1
    KeepLastPos = 2
    AbsolutePos = 3


class VideoSource:
    SideView = 0
    TopView = 1


class ExcitationMode:
    PiezoElectric = 0
    PhotoThermal = 1


class CantileverProperty:
    LeverLength, LeverWidth, SpringConst, AirResonanceFrq, AirQFactor = range(5)
    LiquidResonanceFrq, LiquidQFactor = 5, 6


class SystemMotorID:
    Approach, FootA, FootB, FootC, Focus = range(5)


def channel_unit(channel: int, mode: int) -> str:
    """The unit of scan ``channel`` in operating ``mode``."""
    if channel == ScanChannel.Deflection_or_ZCtrlIn:
        return "V" if mode in STATIC_MODES else "%"
    return CHANNELS[channel][1]
