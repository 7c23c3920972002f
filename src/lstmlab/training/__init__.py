"""Training: losses, optimizers and schedules, checkpoints, and the language-model loop."""

from .losses import log_softmax, mse_loss, softmax, softmax_cross_entropy
from .optim import SGD, Adam, AdamW, Constant, Cosine, StepDecay, Warmup, clip_grad_norm

__all__ = ["SGD", "Adam", "AdamW", "Constant", "Cosine", "StepDecay", "Warmup", "clip_grad_norm",
           "log_softmax", "mse_loss", "softmax", "softmax_cross_entropy"]
