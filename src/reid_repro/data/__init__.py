"""Dataset formats, manifests, samplers and transforms."""
