"""spark-submit entry point: `spark-submit jobs/gold.py --conf conf/demo.yaml` (same as `cdi gold`)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _entry import main  # noqa: E402

if __name__ == "__main__":
    main("gold")
