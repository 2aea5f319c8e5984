"""Experiments built on the ENN and RL sides: the agent benchmark and its engines (local, Ray), the paper's
guided-training comparison (`guide`), Grad-CAM inspection with the lottery test, and the RMSGD / LFP baselines."""
