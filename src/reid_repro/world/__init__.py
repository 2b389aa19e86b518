"""The synthetic person world: body model adapter, renderer and generator."""
