"""`python -m vocaloom ...` is the `vocaloom` command."""

import sys

from vocaloom.pipelines.cli import main

sys.exit(main())
