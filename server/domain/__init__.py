"""The vocabulary every room shares: task categories, configuration, the model registry, prices, messages."""
