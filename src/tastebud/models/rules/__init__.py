"""Frequent itemsets and association rules: FP-Growth, Apriori, rule metrics, the basket recommender.

Modules are imported on use (``tastebud.<Name>`` or the registry), so importing the family
loads none of them."""
