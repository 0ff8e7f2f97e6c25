"""Models: the registry's rows and files, the booster cache, feedback."""
