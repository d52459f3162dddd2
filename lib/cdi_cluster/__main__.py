"""``python -m cdi_cluster ...``, and the file spark-submit runs for ``check``."""

import sys

from cdi_cluster import main

sys.exit(main())
