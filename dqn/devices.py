"""The torch device a command runs on, chosen once at its entry point."""

from __future__ import annotations

from dqn.errors import UserError


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when a GPU is there, else "cpu"; "cuda" without a GPU is a UserError."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device} asked for a GPU, but torch sees none; use --device cpu or auto")
    if device != "cpu" and not device.startswith("cuda"):
        raise UserError(f"unknown device {device!r}; use auto, cpu or cuda")
    return device
