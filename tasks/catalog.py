"""Built-in tasks, registered in :data:`harness.registry.TASKS` on import.

============  =================================================================  =====
name          dataset                                                            fps
============  =================================================================  =====
ucf_crime     UCF-Crime test (official temporal annotation)                      30
xd_violence   XD-Violence test (``annotations.txt``)                             24
complexvad    ComplexVAD test (vad-eval JSON)                                    30
msad          MSAD test (UCF-format annotation + LAVAD-style index, VADTree)     30
ucf_format    any dataset in UCF-Crime's annotation format, set by settings      30
============  =================================================================  =====
"""

from __future__ import annotations

from harness.registry import TASKS
from tasks.complexvad_task import ComplexVadTask
from tasks.frame_task import FrameTask
from tasks.ucf_tasks import MsadTask, UcfCrimeTask, UcfFormatTask
from tasks.xd_task import XdViolenceTask

BUILTIN_TASKS: tuple[type[FrameTask], ...] = (
    UcfCrimeTask, XdViolenceTask, ComplexVadTask, MsadTask, UcfFormatTask)

for _task in BUILTIN_TASKS:
    TASKS.add(_task.name, _task)
