"""Plugin CLI commands: every module here that defines a click command named ``command`` is
added to the ``tastebud`` command line automatically."""
