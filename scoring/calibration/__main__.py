"""``python -m scoring.calibration``: replay the calibration set and the held-out set and
print their agreement figures as Markdown (the tables in ``docs/scoring.md``)."""

from __future__ import annotations

from scoring.calibration import HELDOUT_DIR, load_calibration_sessions
from scoring.calibration.agreement import score_calibration


def main() -> None:
    print("Calibration set:\n")
    print(score_calibration(load_calibration_sessions()).markdown())
    print("\nHeld-out set:\n")
    print(score_calibration(load_calibration_sessions(HELDOUT_DIR)).markdown())


if __name__ == "__main__":
    main()
