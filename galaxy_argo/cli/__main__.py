"""``python -m galaxy_argo.cli``: the ``galaxy-argo`` command without its console script."""

from __future__ import annotations

import sys

from galaxy_argo.cli.main import main

sys.exit(main())
