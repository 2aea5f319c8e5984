"""The problem side of Grad-Instructor: data, target MLPs, weight images and the environments.

Importing this package registers ``GradInstructor-v0`` with Gymnasium.
"""

import gymnasium

from gi_envs.batched_mlp import BatchedMLP, MinibatchSampler
from gi_envs.datasets import DATASETS, Dataset, load_dataset
from gi_envs.grad_instructor_env import ENV_ID, GradInstructorEnv
from gi_envs.optimizers import OPTIMIZERS, OptimizerKind, register_optimizer
from gi_envs.regime import REGIME_DISTRIBUTIONS, Regime, RegimeDistribution
from gi_envs.spec import ImageSpec, MLPSpec
from gi_envs.task import EnvConfig, TrainingTask
from gi_envs.task_family import TASK_SPLITS, DrawnTask, TaskDistribution, TaskSplit
from gi_envs.training import Training, train_mlps
from gi_envs.vector_env import GradInstructorVectorEnv
from gi_envs.weight_image import image_layout, upsample_action, weight_image

if ENV_ID not in gymnasium.registry:
    gymnasium.register(
        id=ENV_ID,
        entry_point="gi_envs.grad_instructor_env:GradInstructorEnv",
        vector_entry_point="gi_envs.vector_env:GradInstructorVectorEnv",
        # no max_episode_steps: the env truncates at its own `episode_length` and reports it in `env.spec`
    )


def __getattr__(name: str):
    """`SB3VecEnv` and `make_sb3_vec_env` load Stable-Baselines3, so they are imported on first use."""
    if name in ("SB3VecEnv", "make_sb3_vec_env"):
        from gi_envs import sb3_vec_env

        return getattr(sb3_vec_env, name)
    raise AttributeError(f"module 'gi_envs' has no attribute {name!r}")


__all__ = [
    "DATASETS",
    "ENV_ID",
    "OPTIMIZERS",
    "REGIME_DISTRIBUTIONS",
    "TASK_SPLITS",
    "BatchedMLP",
    "Dataset",
    "DrawnTask",
    "EnvConfig",
    "GradInstructorEnv",
    "GradInstructorVectorEnv",
    "ImageSpec",
    "MLPSpec",
    "MinibatchSampler",
    "OptimizerKind",
    "Regime",
    "RegimeDistribution",
    "SB3VecEnv",
    "TaskDistribution",
    "TaskSplit",
    "Training",
    "TrainingTask",
    "image_layout",
    "load_dataset",
    "make_sb3_vec_env",
    "register_optimizer",
    "train_mlps",
    "upsample_action",
    "weight_image",
]
