"""spark-submit entry point: `spark-submit jobs/maintain.py --conf conf/prod.yaml` (same as `cdi maintain`)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _entry import main  # noqa: E402

if __name__ == "__main__":
    main("maintain")
