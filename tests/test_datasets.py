"""``twin generate``: paired items on Dask distributed, the same whatever the workers, resumable."""

from __future__ import annotations

import io
import json
import logging
import socket
import subprocess
import sys

import cf_xarray  # noqa: F401 - the .cf accessor
import numpy as np
import pytest
import xarray as xr
import yaml

from twin.datasets import generate, load_config, store
from twin.datasets.config import config_from_dict
from twin.sample import Window
from twin.sample.recipe import build
from twin.sample.truth import CLASSES

SMALL = {
    "sample": "graphene-features",
    "items": 4,
    "seed": 11,
    "region": [["-1.9 um", "1.9 um"], ["-1.5 um", "1.5 um"]],
    "tem": {"size": 128, "magnification": [1050000, 2050000], "focus": ["-15 nm", "-5 nm"]},
    "afm": {"size": 64, "double_tip": 0.5},
    "stem": {"size": 64, "dwell_time": ["2 us", "4 us"]},
}


class _Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def cluster():
    """One local Dask cluster (a single-threaded worker process) for the module's in-process runs:
    each new cluster's worker pays the simulation stack's imports and a first item's warm-up again.
    ``generate`` starting a cluster of its own is what the command-line test runs."""
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address="127.0.0.1:0") as local:
        yield local.scheduler_address


@pytest.fixture(scope="module")
def one_worker(cluster, tmp_path_factory):
    """The reference: every item made by one worker in one run (its progress written to a log file)."""
    out = tmp_path_factory.mktemp("datasets") / "one.zarr"
    log = io.StringIO()
    report = generate(config_from_dict(SMALL), out, scheduler=cluster, netcdf=True, progress=log)
    assert (report.written, report.skipped, report.workers) == (4, 0, 1)
    # not a terminal: no progress bar, only the dashboard's address
    assert "\r" not in log.getvalue() and log.getvalue().startswith("Dask dashboard: http://127.0.0.1:")
    assert log.getvalue().splitlines()[1:] == [f"writing the NetCDF copy {out.with_suffix('.nc')}"]
    assert 0 < report.cluster_seconds < report.startup <= report.seconds and report.steady_rate > report.rate
    return out


def _same(a, b) -> None:
    """``b`` holds the same data as ``a`` (as many items as ``b`` has: the first of ``a``'s)."""
    b = xr.open_zarr(b).load()
    a = xr.open_zarr(a).isel(item=slice(0, b.sizes["item"])).load()
    assert set(a.data_vars) == set(b.data_vars)
    for name in a.data_vars:
        assert np.array_equal(a[name].values, b[name].values), name


@pytest.mark.slow
def test_two_workers_through_the_command_line_write_the_same_dataset(one_worker, tmp_path):
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump(SMALL))
    out = tmp_path / "two.zarr"
    result = subprocess.run([sys.executable, "-m", "twin", "generate", str(config), "--out", str(out),
                             "--workers", "2"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "4 items written" in result.stdout and "with 2 workers" in result.stdout
    assert "start-up" in result.stdout and "items/s steady" in result.stdout
    assert "\r" not in result.stderr  # a pipe: no bar
    assert "Dask dashboard: http://127.0.0.1:" in result.stderr
    assert ":8787/" not in result.stderr  # its own cluster's dashboard: a free port, not Dask's 8787
    # the dashboard found a free port; every worker ended by itself (none killed after a grace time)
    assert "already in use" not in result.stderr and "still alive" not in result.stderr, result.stderr
    _same(one_worker, out)


@pytest.mark.slow
def test_an_interrupted_run_resumes_to_the_same_dataset(one_worker, cluster, tmp_path):
    """Three items (a config of its own: its specimens are not the reference run's, still cached in the
    worker), two made before the run stops: the resumed store holds the reference run's first three
    items, as every item depends on ``(seed, item)`` only."""
    out = tmp_path / "resumed.zarr"
    config = config_from_dict({**SMALL, "items": 3})
    terminal = _Terminal()
    first = generate(config, out, scheduler=cluster, max_new=2, progress=terminal)  # stops, as if killed
    assert first.written == 2
    bar = terminal.getvalue().split("\n", 1)[1]  # after the dashboard's address
    assert "\r" in bar and "2/2" in bar and "<" in bar  # items done, elapsed < time left
    partial = xr.open_zarr(out)
    assert partial.done.values.tolist() == [True, True, False]
    second = generate(config, out, scheduler=cluster, progress=None)
    assert (second.written, second.skipped) == (1, 2)
    _same(one_worker, out)
    other = config_from_dict({**SMALL, "items": 3, "seed": 12})
    with pytest.raises(ValueError, match="holds a dataset of another config"):
        generate(other, out, scheduler=cluster, progress=None)


def test_the_report_gives_the_start_up_apart_from_the_steady_throughput():
    from twin.datasets.generate import Report

    # 2 workers up after 10 s; their first items written at 48 s and 50 s, two more at 55 s and 60 s
    report = Report(written=4, skipped=0, seconds=60.0, workers=2, times=(48.0, 50.0, 55.0, 60.0),
                    cluster_seconds=10.0)
    assert report.summary() == ("start-up 50.0 s (cluster 10.0 s, then each worker's first item), then "
                                "0.20 items/s steady; 0.07 items/s overall")  # 2 items in 10 s; 4 in 60 s
    few = Report(written=2, skipped=0, seconds=30.0, workers=2, times=(25.0, 28.0), cluster_seconds=5.0)
    assert few.summary().endswith("too few items for a steady rate; 0.07 items/s overall")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.mark.slow
@pytest.mark.parametrize("grace", [5.0, None])  # 5 s: distributed's own, None: the run's
def test_closing_waits_for_a_worker_slow_to_exit_instead_of_killing_it(grace):
    from dask.distributed import Client, LocalCluster

    from twin.common.cluster import close

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = Client(cluster)
    # the worker's interpreter takes 5 s to end, as a busy machine's teardown of abTEM and Dask can
    client.run(lambda: __import__("atexit").register(__import__("time").sleep, 5.0))
    nanny, records = logging.getLogger("distributed.nanny"), _Records()
    nanny.addHandler(records)
    try:
        close(client, cluster, [], *([] if grace is None else [grace]))
    finally:
        nanny.removeHandler(records)
    killed = [line for line in records.lines if "still alive" in line]
    assert killed if grace == 5.0 else not killed, records.lines


def test_items_pair_tem_and_afm_over_the_same_place_with_their_ground_truth(one_worker):
    data = xr.open_zarr(one_worker).load()
    assert data.done.all()
    assert data.sizes == {"item": 4, "tem_y": 128, "tem_x": 128, "afm_y": 64, "afm_x": 64, "stem_y": 64,
                          "stem_x": 64}
    assert np.allclose(data.stem_pixel * 64, data.tem_pixel * 128)  # STEM scans the TEM's field of view
    assert np.allclose(data.stem_x_min, data.tem_x_min, atol=1e-10)  # specimen drift in between
    assert np.allclose(data.stem_y_min, data.tem_y_min, atol=1e-10)
    assert ((data.dwell_time >= 2e-6) & (data.dwell_time <= 4e-6)).all()
    assert (data.stem_image.max(dim=("stem_y", "stem_x")) > 0).all()
    # the same field of view: an AFM pixel is two TEM pixels, both grids start at the same corner
    assert np.allclose(data.afm_pixel, 2 * data.tem_pixel)
    assert np.allclose(data.afm_x_min, data.tem_x_min) and np.allclose(data.afm_y_min, data.tem_y_min)
    assert data.tem_classes.attrs["flag_meanings"].split()[0] == "support"
    for item in range(4):
        topography, truth = data.afm_topography[item].values, data.afm_height[item].values
        if truth.std() > 1e-12:  # on the flake (or its edge): the tip sees the surface's relief ...
            here = np.corrcoef(topography.ravel(), truth.ravel())[0, 1]
            misplaced = np.corrcoef(topography[:, 4:].ravel(), truth[:, :-4].ravel())[0, 1]
            assert here > 0.7 and here > misplaced + 0.1  # ... where it is, not 4 pixels away
        else:  # flat: what is left is the measurement's noise, well below an atomic step
            assert np.std(topography) < 0.5e-10
        assert np.median(topography - truth) > -0.5e-10  # a tip never reaches below the surface
    assert (data.second_apex_x != 0).any() and set(np.unique(data.magnification)) <= {1.05e6, 2.05e6}
    netcdf = xr.open_dataset(one_worker.with_suffix(".nc"))
    assert np.array_equal(netcdf.tem_image.values, data.tem_image.values)
    netcdf.close()


def _cf_problems(path, monkeypatch) -> list[str]:
    """What the CF checker (compliance-checker, CF 1.10, every level) finds wrong at ``path``, offline."""
    from compliance_checker.runner import CheckSuite, ComplianceChecker

    def no_network(*args, **kwargs):
        raise OSError("the CF check must run offline")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    CheckSuite.load_all_available_checkers()
    report = path.parent / f"{path.name}.cf.json"
    # a Zarr store is a directory: the NetCDF file-name rule does not apply to it
    skip = ["check_filename"] if path.is_dir() else []
    ComplianceChecker.run_checker(str(path), ["cf:1.10"], 0, "strict", skip_checks=skip,
                                  output_filename=str(report), output_format="json")
    results = json.loads(report.read_text())["cf:1.10"]
    return [message for priority in ("high_priorities", "medium_priorities", "low_priorities")
            for result in results[priority] for message in result["msgs"]]


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_the_store_and_its_netcdf_copy_are_cf_compliant(one_worker, suffix, monkeypatch):
    path = one_worker.with_suffix(suffix)
    assert _cf_problems(path, monkeypatch) == []
    data = store.open_dataset(path)
    assert data.attrs["Conventions"] == "CF-1.10"
    assert data.cf.axes == {"X": ["afm_x_coord", "stem_x_coord", "tem_x_coord"],
                            "Y": ["afm_y_coord", "stem_y_coord", "tem_y_coord"]}
    for grid in ("tem", "afm", "stem"):
        assert data[f"{grid}_image" if grid != "afm" else "afm_height"].cf["X"].name == f"{grid}_x_coord"
        assert data[f"{grid}_classes"].attrs["flag_values"].dtype == data[f"{grid}_classes"].dtype
    for name, variable in data.variables.items():
        assert " " not in name and "long_name" in variable.attrs, name
        assert "units" in variable.attrs or name.endswith("_classes"), name
    plain = xr.open_zarr(one_worker) if suffix == ".zarr" else xr.open_dataset(path)  # no helper needed
    plain.to_netcdf(path.parent / f"again{suffix}.nc")  # what is opened writes out again
    assert plain.done.dtype == bool and plain.done.all()


def test_a_defect_lies_at_the_pixel_the_coordinates_name(one_worker):
    """Point defects of the item's specimen (ground truth, sample frame) are labelled at the pixels whose
    coordinates are nearest their positions, on every grid."""
    data = store.open_dataset(one_worker).load()
    config = config_from_dict(SMALL)
    checked = 0
    for item in range(4):
        sample = build(config.sample, int(data.sample_seed[item]))
        for grid in ("tem", "afm", "stem"):
            x, y = data[f"{grid}_x_coord"][item].values, data[f"{grid}_y_coord"][item].values
            pixel = float(data[f"{grid}_pixel"][item])
            assert np.allclose(np.diff(x), pixel) and np.allclose(np.diff(y), pixel)
            window = Window(x[0] - pixel / 2, y[0] - pixel / 2, x[-1] + pixel / 2, y[-1] + pixel / 2)
            classes = data[f"{grid}_classes"][item].values
            found = [classes[np.abs(y - d.y).argmin(), np.abs(x - d.x).argmin()] == CLASSES[d.kind]
                     for d in sample.defects_in_window(window) if d.kind in ("substitution", "adsorbate")]
            checked += len(found)
            assert sum(found) >= 0.9 * len(found), (item, grid)  # a later-painted feature may cover one
    assert checked >= 5


@pytest.mark.parametrize(("change", "message"), [
    ({"items": 0}, "items = 0 must be an integer from 1"),
    ({"tem": {"magnification": [1234]}}, "tem.magnification = 1234 is not a nominal magnification"),
    ({"tem": {"high_tension": ["500 kV"]}}, "tem.high_tension = 500000 is out of range; allowed 60000"),
    ({"afm": {"tip_radius": ["5 nm", "1 nm"]}}, "afm.tip_radius .* must not exceed the second"),
    ({"colour": "red"}, "dataset config has unknown keys colour"),
    ({"afm": {"double_tip": 1.5}}, "afm.double_tip = 1.5 is out of range; allowed 0 to 1"),
    ({"seed": "abc"}, "seed must be an integer, got 'abc'"),
])
def test_bad_dataset_configs_name_the_field(change, message, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**SMALL, **change}))
    with pytest.raises((ValueError, TypeError), match=message):
        load_config(path)
