"""Item embeddings and transitions from sequences or baskets: Item2Vec, first-order transitions.

Modules are imported on use (``tastebud.<Name>`` or the registry), so importing the family
loads none of them."""
