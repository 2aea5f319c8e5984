"""The learner side of Grad-Instructor: policies, RL agents, the ENN, guidance, Grad-CAM, logging.

Modules here may import `gi_envs`; nothing in `gi_envs` imports from here.
"""
