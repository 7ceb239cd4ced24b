"""The benchmarks' cohort generators, moved to ``carepath/replay/cohort.py`` (the demo replays
them too, and runtime code may not import bench/); re-exported here for the bench scripts."""

from carepath.replay.cohort import (  # noqa: F401
    FLS_CLOSE_REASONS,
    fls_scenario,
    patient,
    scenario,
    write_cohort,
    write_fls_cohort,
)
