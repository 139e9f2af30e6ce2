"""EDS through the AutoScript-shaped client on a real server: the detector's read-outs, spectra as lab
scripts decode them (segments concatenated, XML metadata, raw uint32 bytes), clear refusals, and files
that RosettaSciIO (HyperSpy's reader) opens with the right axes and units."""

from __future__ import annotations

import warnings
from xml.etree import ElementTree

import numpy as np
import pytest

from clients.errors import InvalidValue
from clients.tem.enumerations import DetectorType, EdsDetectorType, ExposureTimeType
from clients.tem.structures import EdsAcquisitionSettings, EdsSpectrumImageSettings


def settings_for(microscope, exposure: float = 0.5) -> EdsAcquisitionSettings:
    name = microscope.detectors.eds_detectors[0]
    detector = microscope.detectors.get_eds_detector(name)
    settings = EdsAcquisitionSettings()
    settings.eds_detector = name
    settings.dispersion = detector.dispersions[-1]
    settings.shaping_time = detector.shaping_times[-1]
    settings.exposure_time = exposure
    settings.exposure_time_type = ExposureTimeType.LIVE_TIME
    return settings


def test_the_eds_detector_lists_its_read_outs(microscope) -> None:
    assert microscope.detectors.eds_detectors == ["SuperX"]
    detector = microscope.detectors.get_eds_detector(EdsDetectorType.SUPER_X)
    assert detector.name == "SuperX" and detector.insertion_state == "Inserted" and detector.is_insertable
    assert detector.bin_counts == [4096]
    assert 5.0 in detector.dispersions and 3e-6 in detector.shaping_times
    with pytest.raises(ValueError, match="SuperX"):
        microscope.detectors.get_eds_detector(EdsDetectorType.ULTRA_X)  # not on this microscope


def test_a_spectrum_reads_as_lab_scripts_decode_it(microscope, tmp_path) -> None:
    microscope.optics.optical_mode = "Tem"
    microscope.optics.blanker.unblank()
    spectrum = microscope.analysis.eds.acquire_spectrum(settings_for(microscope, 10.0))  # ~400 C K counts
    root = ElementTree.fromstring(spectrum.metadata.metadata_as_xml)
    detectors = root.findall("Detectors/AnalyticalDetector")
    assert len(detectors) == 4  # the Super-X's four segments
    dispersion = float(detectors[0].find("Dispersion").text)
    offset = float(detectors[0].find("OffsetEnergy").text)
    assert dispersion == 5.0 and float(root.find("Optics/AccelerationVoltage").text) == 80e3
    assert spectrum.data.shape == (4 * 4096,) and spectrum.data.dtype == np.uint32
    assert np.array_equal(np.frombuffer(spectrum._raw_data, "<u4"), spectrum.data)
    summed = spectrum.data.reshape(4, -1).sum(axis=0)
    keV = (np.arange(4096) * dispersion + offset) / 1000
    carbon = summed[np.abs(keV - 0.277) < 0.06].sum()
    assert carbon > 5 * summed[np.abs(keV - 0.6) < 0.06].sum() + 100  # graphene: the C K line stands out
    older = microscope.analysis.acquire_eds_spectrum(settings_for(microscope, 0.1))  # pre-``eds`` releases
    assert older.data.shape == spectrum.data.shape

    import rsciio.emd
    import rsciio.msa

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        emd = rsciio.emd.file_reader(str(spectrum.save(tmp_path / "spectrum")))[0]
        msa = rsciio.msa.file_reader(str(spectrum.save(tmp_path / "spectrum.msa")))[0]
    for read in (emd, msa):
        (axis,) = read["axes"]
        assert (axis["offset"], axis["scale"], axis["units"]) == (offset, dispersion, "eV")
        assert np.array_equal(read["data"], summed)
    assert msa["metadata"]["Acquisition_instrument"]["TEM"]["beam_energy"] == 80.0  # kV


def test_eds_settings_are_checked_and_name_what_is_allowed(microscope) -> None:
    settings = settings_for(microscope)
    settings.dispersion = 7.0
    with pytest.raises(ValueError, match=r"dispersion = 7\.0 eV is not offered; allowed: 1\.25, 2\.5, 5"):
        microscope.analysis.eds.acquire_spectrum(settings)
    unset = EdsAcquisitionSettings()
    with pytest.raises(InvalidValue, match="eds_detector is not set"):
        microscope.analysis.eds.acquire_spectrum(unset)
    detector = microscope.detectors.get_eds_detector("SuperX")
    detector.retract()
    try:
        with pytest.raises(RuntimeError, match="retracted"):
            microscope.analysis.eds.acquire_spectrum(settings_for(microscope))
    finally:
        detector.insert()
    image_settings = EdsSpectrumImageSettings(eds_detector="SuperX", dispersion=5.0, shaping_time=3e-6,
                                              dwell_time=1e-3, size=16)
    microscope.optics.optical_mode = "Tem"
    with pytest.raises(RuntimeError, match="optical_mode 'Stem'"):
        microscope.analysis.eds.acquire_spectrum_image(image_settings)


def test_a_spectrum_image_and_its_haadf_open_in_rosettasciio(microscope, tmp_path) -> None:
    microscope.optics.optical_mode = "Stem"
    microscope.optics.scan_field_of_view = 3e-9
    try:
        settings = EdsSpectrumImageSettings(eds_detector="SuperX", dispersion=5.0, shaping_time=3e-6,
                                            dwell_time=2e-3, size=16, scanning_detectors=[DetectorType.HAADF])
        image = microscope.analysis.eds.acquire_spectrum_image(settings)
    finally:
        microscope.optics.optical_mode = "Tem"
    assert image.shape == (16, 16, 4096) and len(image.images) == 1
    assert image.spectrum.sum() == len(image.pixel) > 0
    assert image.map(-1e9, 1e9).sum() == len(image.pixel)

    import rsciio.emd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        read = rsciio.emd.file_reader(str(image.save(tmp_path / "spectrum_image.emd")))
    cube = next(r for r in read if r["data"].ndim == 3)
    haadf = next(r for r in read if r["data"].ndim == 2)
    assert np.array_equal(cube["data"], image.data[::-1])  # north up: the file's first row is the top
    assert [a["units"] for a in cube["axes"]] == ["m", "m", "eV"]
    assert cube["axes"][1]["scale"] == pytest.approx(3e-9 / 16)
    assert cube["axes"][0]["scale"] == pytest.approx(-3e-9 / 16)  # y descends down the rows
    assert np.array_equal(haadf["data"], image.images[0].data[::-1])
