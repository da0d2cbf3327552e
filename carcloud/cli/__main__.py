"""`python -m carcloud.cli`."""

import sys

from carcloud.cli.main import main

sys.exit(main())
