"""Baselines the paper compares DQN with: its published reference scores and the random agent."""
