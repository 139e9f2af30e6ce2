# Rehearses: nanosurf (PyPI) 1.14.1 nanosurf/app/demo_spec_setup_and_data_plotting/spec_demo.py (the
# vendor's spectroscopy demo: check the connection and scripting, set the module level, modulated
# output, z-loop, relative mode, repetition, end mode, offsets and speeds, both directions' points,
# modulation, range, time and pauses, start at the tip's position, wait in a tight loop, read both
# directions' deflection and plot them; no approach first). Written for the twin; only API names and
# values follow the source.
# twin run: --serve
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nanosurf as nsf

spm = nsf.SPM()
if not spm.is_connected():
    raise SystemExit("not connected")
if not spm.is_scripting_enabled():
    raise SystemExit("scripting is not activated")
application = spm.application
application.Visible = True
spec = application.Spec
spec.ClearPositionList()
spec.ModuleLevel = spm.SpecModuleLevel.Standard
spec.ModulatedOutput = spm.SpecModulatedOutput.ZAxis
spec.ActiveZController = False
spec.EnableRelative = True
spec.RepetitionMode = spm.SpecRepetitionMode.Position
spec.Repetition = 1
spec.SpecEndMode = spm.SpecEndMode.KeepLastZPos
spec.StartOffsetMoveSpeed = 10e-6
spec.StartOffset = 0.0
spec.XYMoveSpeed = 100e-6
spec.FwdModDataPoints = 512
spec.FwdModulationMode = spm.SpecModulationMode.FixedLength
spec.FwdModulationRange = 500e-9
spec.FwdModulationTime = 0.5
spec.FwdPauseMode = spm.SpecPauseMode.KeepLastZPos
spec.FwdPauseDataPoints = 0
spec.BwdModDataPoints = 512
spec.BwdModulationMode = spm.SpecModulationMode.FixedLength
spec.BwdModulationRange = -500e-9
spec.BwdModulationTime = 0.5
spec.BwdPauseMode = spm.SpecPauseMode.KeepLastZPos
spec.BwdPauseDataPoints = 0
spec.Start()
while spec.IsMeasuring:
    pass
forward = spec.GetLine2(spm.SpecGroupNo.Forward, spm.SpecChannel.Deflection_or_ZCtrlIn, 0,
                        spm.DataFilter.RAW, spm.DataConversion.Physical)
backward = spec.GetLine2(spm.SpecGroupNo.Backward, spm.SpecChannel.Deflection_or_ZCtrlIn, 0,
                         spm.DataFilter.RAW, spm.DataConversion.Physical)
assert len(forward) == len(backward) == 512
plt.plot(forward)
plt.plot(backward)
plt.savefig("spec_demo.png")
del spm
print("rehearsal complete")
