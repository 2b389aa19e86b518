"""The shared training loop and what every method uses: data, sampler, memories, checkpoints, tracking."""
