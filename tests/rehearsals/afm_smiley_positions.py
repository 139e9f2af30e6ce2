# Rehearses: nanosurf (PyPI) 1.14.1 nanosurf/app/demo_creating_spec_pos_table_with_smiley/
# spectroscopy_demo_creating_a_smiley.py (fill the spectroscopy position list with a smiley: 24 points
# on a 30 um circle, two eyes, a 9-point mouth; the demo leaves Start commented out for the user, who
# starts it here). Written for the twin; only API names and values follow the source.
# twin run: --serve
import math

import nanosurf as nsf

spm = nsf.SPM()
spec = spm.application.Spec
spec.ClearPositionList()
radius, head_points = 30.0e-6, 24
step = 2 * math.pi / head_points
for i in range(head_points):
    spec.AddPosition(radius * math.cos(i * step), radius * math.sin(i * step), 0)
spec.AddPosition(radius / 3, radius / 3, 0)
spec.AddPosition(-radius / 3, radius / 3, 0)
mouth = head_points // 6
for i in range(mouth + 1):
    angle = 1.5 * math.pi - i * step
    spec.AddPosition(0.75 * radius * math.cos(angle), 0.75 * radius * math.sin(angle) + 0.1 * radius, 0)
for i in range(1, mouth + 1):
    angle = 1.5 * math.pi + i * step
    spec.AddPosition(0.75 * radius * math.cos(angle), 0.75 * radius * math.sin(angle) + 0.1 * radius, 0)
spec.FwdModDataPoints = spec.BwdModDataPoints = 64
spec.Start()
while spec.IsMeasuring:
    pass
assert spec.Currentline == 35  # one curve at every point of the smiley
del spm
print("Done")
print("rehearsal complete")
