"""``python -m scoring.calibration``: replay each track's calibration set and held-out set
and print their agreement figures as Markdown (the tables in ``docs/scoring.md``)."""

from __future__ import annotations

from scoring.calibration import TRACK_DIRS, heldout_dir, load_calibration_sessions
from scoring.calibration.agreement import score_calibration


def main() -> None:
    for track, folder in TRACK_DIRS.items():
        print(f"{track}, calibration set:\n")
        print(score_calibration(load_calibration_sessions(folder)).markdown())
        print(f"\n{track}, held-out set:\n")
        print(score_calibration(load_calibration_sessions(heldout_dir(track))).markdown())
        print()


if __name__ == "__main__":
    main()
