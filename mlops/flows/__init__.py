"""The only modules that know several features at once."""
