"""The simulated TEM/STEM: hardware description, stage, imaging physics glue and the instrument."""

from twin.instruments.tem.hardware import CAMERA_LENGTHS, NOMINAL_MAGNIFICATIONS, TemHardware
from twin.instruments.tem.instrument import TemInstrument

__all__ = ["CAMERA_LENGTHS", "NOMINAL_MAGNIFICATIONS", "TemHardware", "TemInstrument"]
