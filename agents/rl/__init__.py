"""The RL side: SB3 / sb3-contrib algorithms and their configs, the ENN body as a features extractor,
training, evaluation against the reference policies, critic export and W&B tracking."""
