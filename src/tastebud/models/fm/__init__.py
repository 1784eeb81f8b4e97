"""Factorization machines and the feature builder that feeds them.

Modules are imported on use (``tastebud.<Name>`` or the registry), so importing the family
loads none of them."""
