"""Matrix factorization: explicit (SGD MF, SVD++, weighted-λ ALS) and implicit (ALS, BPR, PureSVD).

Modules are imported on use (``tastebud.<Name>`` or the registry), so importing the family
loads none of them."""
