"""The default YAML configs, shipped inside the installed package as `agents.configs`.

One file per algorithm (`ppo.yaml`, ...) and one per guide experiment (`paper_digits.yaml`, ...);
code finds them with `agents.config_files.default_config`, never by path.
"""
