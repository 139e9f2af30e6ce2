"""Baseline for tem-beam-sensitive: a textbook choice, not the best one.

80 kV is the usual "low-voltage" setting for 2-D materials; the baseline switches to it and takes one
HAADF image at a short dwell time, sparing the sample but leaving the image noisy (and at 80 kV sulphur
still sputters a little under a longer dwell).
"""

from __future__ import annotations

from typing import Any

from clients.challenge import Challenge
from clients.tem import TemMicroscopeClient


def run(host: str, port: int, instance: str | None) -> dict[str, Any]:
    challenge = Challenge(host, port, instance)
    microscope = TemMicroscopeClient()
    microscope.connect(host, port, instance)
    try:
        microscope.source.acceleration_voltage = 80e3  # V
        image = microscope.acquisition.acquire_stem_image("HAADF", 256, 4e-6)
        return challenge.submit({"frame_index": image.metadata.acquisition.frame_index})
    finally:
        microscope.disconnect()
        challenge.close()


if __name__ == "__main__":
    from scenarios.baselines._common import main

    main(run, __doc__)
