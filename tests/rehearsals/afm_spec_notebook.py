# Rehearses: nanosurf (PyPI) 1.2.0 nanosurf/app/demo_spec_setup_and_data_plotting/spec_demo.ipynb (the
# notebook: make the application visible, a status message, the 1.0-1.2 enum spelling "Standart", no
# position list cleared) and the older demo variant it grew from (Start with the GUI's settings, wait,
# GetLine2 with literal numbers: forward/backward, deflection, raw, physical). Written for the twin;
# only API names and values follow the source.
# twin run: --serve
import nanosurf

spm = nanosurf.SPM()
application = spm.application
application.Visible = False
application.Visible = True
application.PrintStatusMsg("Hello world!")
spec = application.Spec
spec.ModuleLevel = spm.SpecModuleLevel.Standart
spec.Repetition = 4
spec.Start()
while spec.IsMeasuring:
    pass
FORWARD_SPEC, BACKWARD_SPEC, DEFLECTION_CHANNEL, RAW_DATA, PHYSICAL_VALUES = 0, 1, 0, 0, 1
for repetition in range(4):
    forward = spec.GetLine2(FORWARD_SPEC, DEFLECTION_CHANNEL, repetition, RAW_DATA, PHYSICAL_VALUES)
    backward = spec.GetLine2(BACKWARD_SPEC, DEFLECTION_CHANNEL, repetition, RAW_DATA, PHYSICAL_VALUES)
    print(repetition, len(forward), min(forward), max(backward))
assert spec.Currentline == 4
del spm
print("rehearsal complete")
