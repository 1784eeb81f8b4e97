"""Sequential (next-item) recommenders: SASRec and its PyTorch modules.

Modules are imported on use (``tastebud.<Name>`` or the registry), so importing the family
loads none of them."""
