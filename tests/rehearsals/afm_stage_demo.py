# Rehearses: nanosurf (PyPI) 1.14.1 nanosurf/app/demo_move_sample_stage/demo_move_sample_stage.py (the
# vendor's stage demo: connection checks, stop (lowercase), an information dump of instance, reference,
# axis names, units, state, positions, speed, ranges and zeros; then its helpers: reference search, the
# present position as zero, a speed in percent, a relative XY move as one transaction cleared after the
# commit and polled to the end, lock and unlock). Written for the twin; only API names and values
# follow the source.
# twin run: --serve
import time

import nanosurf as nsf

AXIS_X, AXIS_Y = 0, 1
spm = nsf.SPM()
if not spm.is_connected() or not spm.is_scripting_enabled():
    raise SystemExit("no controller")
application = spm.application
stage = application.Stage
stage.stop()
print("has instance:", stage.HasInstance, "referenced:", stage.IsReferenced)
for axis in (AXIS_X, AXIS_Y):
    print(stage.GetAxisName(axis), stage.GetAxisUnit(axis))
state = stage.GetState
names = {spm.StageState.IdleUnreferenced: "idle, unreferenced", spm.StageState.Idle: "idle",
         spm.StageState.Moving: "moving"}
print("state:", names.get(state, "unknown"))
for axis in (AXIS_X, AXIS_Y):  # 1.14.1 writes lengths with the package's SI-prefix helper
    print(nsf.sci_val.convert.to_string(stage.GetAxisPosition(axis), stage.GetAxisUnit(axis)))
print("speed:", stage.GetSpeedPercent, "%")
for axis in (AXIS_X, AXIS_Y):
    travel = stage.GetAxisRange(axis)
    zero = stage.GetCurrentAxisZeroPosition(axis)
    print(stage.GetAxisName(axis), "zero at", zero, "can move ±", travel / 2)


def is_stage_moving():
    return stage.GetState == spm.StageState.Moving


def move_stage_xy(dx, dy, relative=True):
    stage.AppendToMoveTransaction(AXIS_X, dx, relative)
    stage.AppendToMoveTransaction(AXIS_Y, dy, relative)
    stage.CommitMoveTransaction()
    stage.ClearMoveTransaction()
    while is_stage_moving():
        time.sleep(0.05)
    return stage.GetAxisPosition(AXIS_X), stage.GetAxisPosition(AXIS_Y)


stage.ReferenceSearch()
while is_stage_moving():
    time.sleep(0.05)
for axis in (AXIS_X, AXIS_Y):
    stage.SetAxisZero(axis)
    print("zeroed", stage.GetAxisName(axis))
stage.SetSpeedPercent(30)
print("speed now", stage.GetSpeedPercent, "%")
stage.Unlock()
x, y = move_stage_xy(100e-6, -50e-6)
assert abs(x - 100e-6) < 1e-12 and abs(y + 50e-6) < 1e-12
stage.Lock()
stage.Unlock()
print("rehearsal complete")
