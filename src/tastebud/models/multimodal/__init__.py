"""The multimodal PyTorch model: feature schema, text encoders, network.

Modules are imported on use (``tastebud.<Name>`` or the registry), so importing the family
loads none of them."""
