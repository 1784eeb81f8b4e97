"""HTTP API over saved models (``tastebud serve``; needs the ``serve`` extra)."""
