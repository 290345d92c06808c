# Installed as package data (lstm_ablation.conf / its `experiment` group): see pyproject.toml.
