# Rehearses: nanosurf-apps (PyPI) 2.0.7 nanosurf/apps/move_sample_stage/move_sample_stage.py (the 2.x
# package's stage app: the connection from nanosurf.com_proxy, the same stage calls as the 1.x demo,
# lengths printed with plain exponents; its helpers run: speed, a relative XY transaction cleared after
# the commit, polled every 50 ms, the position read back, lock). Written for the twin; only API names
# and values follow the source.
# twin run: --serve
import time

from nanosurf.com_proxy import SPM

X_AXIS, Y_AXIS = 0, 1
spm = SPM()
if not spm.is_connected():
    raise SystemExit("Could not connect to the controller")
if not spm.is_scripting_enabled():
    raise SystemExit("Scripting interface is not enabled")
stage = spm.application.Stage
stage.stop()
print(f"instance: {stage.HasInstance}, referenced: {stage.IsReferenced}")
for axis in (X_AXIS, Y_AXIS):
    print(f"{stage.GetAxisName(axis)}: {stage.GetAxisPosition(axis):.3e} {stage.GetAxisUnit(axis)}, "
          f"range {stage.GetAxisRange(axis):.3e}, zero at {stage.GetCurrentAxisZeroPosition(axis):.3e}")
print(f"speed: {stage.GetSpeedPercent}%")
stage.SetSpeedPercent(80)
start = (stage.GetAxisPosition(X_AXIS), stage.GetAxisPosition(Y_AXIS))
stage.AppendToMoveTransaction(X_AXIS, -20e-6, True)
stage.AppendToMoveTransaction(Y_AXIS, 35e-6, True)
stage.CommitMoveTransaction()
stage.ClearMoveTransaction()
while stage.GetState == spm.StageState.Moving:
    time.sleep(0.05)
end = (stage.GetAxisPosition(X_AXIS), stage.GetAxisPosition(Y_AXIS))
print(f"moved by {end[0] - start[0]:.3e}, {end[1] - start[1]:.3e} m")
assert abs(end[0] - start[0] + 20e-6) < 1e-12 and abs(end[1] - start[1] - 35e-6) < 1e-12
stage.Lock()
print("rehearsal complete")
