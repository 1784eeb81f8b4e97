"""Item–item and user–user models: models whose learned state is an item × item (or user × user) weight matrix (EASE).

Modules are imported on use (``tastebud.<Name>`` or the registry), so importing the family
loads none of them."""
