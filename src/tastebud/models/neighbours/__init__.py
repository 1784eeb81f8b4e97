"""Item–item and user–user models: models whose learned state is an item × item (or user × user) weight matrix: EASE, ItemKNN, UserKNN, SAR, the Surprise-style k-NN rating predictors and Slope One.

Modules are imported on use (``tastebud.<Name>`` or the registry), so importing the family
loads none of them."""
