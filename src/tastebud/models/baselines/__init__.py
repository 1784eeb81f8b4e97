"""Baselines: the floor every model must beat — popularity and Koren's baseline estimates.

Modules are imported on use (``tastebud.<Name>`` or the registry), so importing the family
loads none of them."""
