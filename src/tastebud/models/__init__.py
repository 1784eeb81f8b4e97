"""Model implementations; see ``tastebud.models.registry`` for the list."""
