"""``python -m hf_maskedav.app --model DIR_OR_HUB_ID``: see :mod:`hf_maskedav.app.cli`."""

import sys

from .cli import main

sys.exit(main())
