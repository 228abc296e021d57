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

Language-side tasks (a method answers in text; :mod:`tasks.text_task`):

====================  ==========================================================  ==========
name                  benchmark                                                   kind
====================  ==========================================================  ==========
vru_accident_qa       VRU-Accident multiple-choice QA (six categories)            mcq
vru_accident_caption  VRU-Accident dense captioning                               caption
hivau                 HIVAU-70K clip / event / video questions                    caption
vad_reasoning         Vad-R1's Vad-Reasoning test (detection + reasoning text)    reasoning
vane                  VANE-Bench multiple choice                                  mcq
====================  ==========================================================  ==========
"""

from __future__ import annotations

from harness.registry import TASKS
from tasks.base import Task
from tasks.complexvad_task import ComplexVadTask
from tasks.frame_task import FrameTask
from tasks.hivau_task import HivauTask
from tasks.ucf_tasks import MsadTask, UcfCrimeTask, UcfFormatTask
from tasks.vad_reasoning_task import VadReasoningTask
from tasks.vane_task import VaneTask
from tasks.vru_tasks import VruAccidentCaptionTask, VruAccidentQaTask
from tasks.xd_task import XdViolenceTask

FRAME_TASKS: tuple[type[FrameTask], ...] = (
    UcfCrimeTask, XdViolenceTask, ComplexVadTask, MsadTask, UcfFormatTask)
TEXT_TASKS = (VruAccidentQaTask, VruAccidentCaptionTask, HivauTask, VadReasoningTask, VaneTask)
BUILTIN_TASKS: tuple[type[Task], ...] = (*FRAME_TASKS, *TEXT_TASKS)

for _task in BUILTIN_TASKS:
    TASKS.add(_task.name, _task)
