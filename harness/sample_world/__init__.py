"""The sample world: small procedural surveillance videos with exact anomaly intervals.

A fixed camera looks at a street (or a campus plaza): people walk along the walkways in each
walkway's direction (the flow), cars drive in their lanes, static objects stand around; a mild
per-frame sensor noise and a slow lighting drift keep normal frames from being identical. Into
this, anomalies are scripted at exact frame intervals (0-based frames, ends inclusive). Everything
is deterministic from a seed: same seed => same annotation files, same decoded frames (in practice
byte-identical files).

Seven datasets, each in its original's native layout (see :func:`ensure_sample`). Three are
frame-level VAD datasets (``VAD_DATASETS``):

- ``ucf_crime`` (30 fps, street by day): ``<Class>/<Class><NNN>_x264.mp4``,
  ``Testing_Normal_Videos_Anomaly/``, ``Training_Normal_Videos_Anomaly/``, ``Anomaly_Test.txt``,
  ``Anomaly_Train.txt``, ``Temporal_Anomaly_Annotation_for_Testing_Videos.txt``.
- ``xd_violence`` (24 fps, the street at dusk): ``videos/<name>.mp4`` (test), ``train/<name>.mp4``,
  ``annotations.txt`` (anomalous test videos only), ``train_list.txt``.
- ``complexvad`` (30 fps, campus): ``videos/*.mp4``, ``complexvad_test.json`` and
  ``complexvad_train.json`` in our format ``vad-eval/complexvad-v1``.
- Per dataset: 8 anomalous + 8 normal test videos (1-2 intervals each, < 50 % of the video) and
  6 anomalous + 6 normal train videos (video-level labels only), 6-11 s each, 160x120,
  H.264 (libx264; MPEG-4 Part 2 if the bundled FFmpeg lacks it), yuv420p; ~1 MB per dataset.
- Every root (of all seven datasets) also holds ``meta.json``: per-video ``path``, ``split``,
  native ``label``, ``num_frames`` and ``fps`` (no intervals; for ``vane`` the frame folder and
  its stored frame count and rate), written last (its presence marks completion).

Four are language-side benchmarks (``LANGUAGE_DATASETS``) whose texts are written from the same
scene scripts: :mod:`~harness.sample_world.observe` stages each video exactly as it is rendered
and reads off who does what, where and when; :mod:`~harness.sample_world.language` and
:mod:`~harness.sample_world.phrases` turn these facts into seeded template texts (several
phrasings per fact, in our own words), so every text describes what its video shows:

- ``vru_accident`` (VRU-Accident; ``vru.py``): ``VRU_videos/<SUBSET>/VRU_<n>.mp4`` for 4 subsets,
  ``MetaData/<SUBSET>/<SUBSET>_VQA_annotation.json`` (6 multiple-choice categories) and
  ``..._Dense_Caption.json``; accidents with pedestrians and cyclists (``accidents.py``).
- ``hivau`` (HIVAU-70K, UCF part; ``hivau.py``): ``ucf-crime/videos/test/*.mp4``,
  ``raw_annotations/ucf_database_test.json`` (event / clip times in seconds, captions, summaries)
  and ``instruction/merge_instruction_test_final.jsonl`` (clip / event / video QA rows).
- ``vad_reasoning`` (Vad-R1's Vad-Reasoning SFT format; ``vad_reasoning.py``): ``videos/*.mp4``,
  ``Vad-Reasoning-SFT-test.jsonl`` and ``-train.jsonl`` (``<think>`` steps, tagged ``<answer>``),
  ``Vad-Reasoning-RL-train.jsonl`` (24 more videos with video-level labels only).
- ``vane`` (VANE-Bench; ``vane.py``): ``<group>/<Category>/video_frames/<clip>/frame_*.jpg`` and
  ``video_qa/<clip>_qa.txt``; includes the AI-generated-video inconsistencies "sudden
  appearance" and "disappearance" as scripted events.

Each holds 8-16 short videos (6-10 s, 160x120; VANE: folders of 18-24 JPEG frames), ~0.5-1 MB.

Generation uses this process plus worker subprocesses (``VAD_EVAL_SAMPLE_WORKERS``, default:
the usable CPUs, at most 4; ``1`` = in-process only) and checks each video's decoded frame count.

Anomaly kinds and their native labels:

====================  ===============  =====  ==========================================
kind                  UCF-Crime class  XD     what happens
====================  ===============  =====  ==========================================
fight                 Fighting         B1     two people close, jittering, flailing limbs
assault               Assault          -      attacker catches up, knocks a walker down, flees
abuse                 Abuse            B5     attacker keeps striking a person on the ground
run_against_flow      Robbery          -      a person sprints against the walkway's flow
chase                 Arrest           -      one person chases another at a sprint
vehicle_on_sidewalk   RoadAccidents    B6     a car leaves its lane and races along a walkway
car_crash             RoadAccidents    B6     head-on collision, debris, hazard lights, smoke
fire                  Arson            -      a trash bin set on fire: flickering flames
explosion             Explosion        G      flash, fireball, debris, flames; people flee
shooting              Shooting         B2     muzzle flashes; bystanders and shooter run off
abandoned_object      Burglary         -      a person drops a bag and leaves (to the end)
riot                  -                B4     a crowd rushes in, brawls, throws stones
fall                  -                -      a walker falls and struggles on the ground
push                  -                -      one person shoves another, who falls
exchange              -                -      two people hand a package over at a car
skateboard            -                -      a riderless skateboard rolls along a path
crosswalk_hit         -                -      a car hits a pedestrian on the zebra crossing
jaywalk_hit           -                -      a car hits a pedestrian crossing elsewhere
cyclist_hit           -                -      a car hits a cyclist from behind
sudden_appearance     -                -      a person pops into existence mid-path
disappearance         -                -      a walking person vanishes
====================  ===============  =====  ==========================================

UCF-Crime has no abandoned-object class; Burglary stands in for it. Which kinds each split uses
is in ``catalog.PLANS`` (UCF test: fight, assault, run_against_flow, vehicle_on_sidewalk, fire,
explosion, shooting, abandoned_object; XD test: fight, shooting, riot, abuse, car_crash,
explosion, vehicle_on_sidewalk). ComplexVAD uses the kind names as anomaly ``type``, mostly
interactions: push, exchange, chase, fight; plus fall, skateboard, vehicle_on_sidewalk,
abandoned_object.

Usage: ``ensure_sample("ucf_crime")`` or ``python -m harness.sample_world --dataset ucf_crime
--out DIR [--seed S]`` (any of the seven names).
"""

from __future__ import annotations

from harness.sample_world.catalog import DATASETS, LANGUAGE_DATASETS, VAD_DATASETS
from harness.sample_world.generate import ensure_sample

__all__ = ["DATASETS", "LANGUAGE_DATASETS", "VAD_DATASETS", "ensure_sample"]
