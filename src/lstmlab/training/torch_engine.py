"""The PyTorch engine of ``lstmlab train --engine torch``: the char-LM's exact torch twin,
trained in torch (on a CPU or a GPU), kept as an ordinary lstmlab checkpoint.

Dimensions: S steps per chunk, B batch streams, E embedding width, H hidden units,
L layers, V vocabulary.

The twin is ``nn.Embedding -> nn.LSTM / nn.RNN (tanh) -> nn.Linear`` with lstmlab's
parameters converted into it (gate order and transposes: the block permutation of
``layers/recurrent.py``). lstmlab has one bias per gate; torch has ``bias_ih + bias_hh``, so
``bias_ih`` carries lstmlab's bias and ``bias_hh`` stays at zero, outside the optimizer (see
docs/design.md, "One bias"). The optimizer is torch's own SGD / Adam / AdamW, whose rules
lstmlab's optimizers copy operation for operation, with the same hyperparameters, learning
rate per step, global-norm clipping and carried state, so a float64 run follows the NumPy
engine's trajectory to round-off.

The lstmlab ``CharLM`` and optimizer stay the run's checkpoint form:
:meth:`TorchEngine.store_into` writes the twin's parameters and optimizer buffers back into
them (before evaluation and each checkpoint) and :meth:`TorchEngine.load_from` reads them
(at the start and after a resume), so a checkpoint written by either engine resumes on
either one, and ``generate``, ``evaluate``, ``inspect`` and ``export`` read it as any other.

With a :class:`~.distributed.Group` (``--nproc N`` or torchrun, CPU), the twin is wrapped in
torch's ``DistributedDataParallel``: each process runs its share of the batch streams, as
the NumPy engine's processes do, and scales its summed loss by ``N / (S·B)`` so that DDP's
average of the gradients is the gradient of the global mean loss. The loss and the stop flag
are summed by one more small all-reduce per step.

Dropout is refused: lstmlab draws its masks from its own generator, torch from its own, so
the twin would no longer be the same run.
"""

from __future__ import annotations

import math

import numpy as np

from ..layers.recurrent import _TORCH_PERM, _permute_blocks


def _import_torch():
    try:
        import torch
    except ImportError:
        raise ValueError("--engine torch needs PyTorch (pip install torch)") from None
    return torch


def _check_supported(model, device: str) -> None:
    cfg = model.config
    if cfg.cell not in ("lstm", "rnn"):
        # lstmlab's GRU has the biases b_r, b_z, b_in, b_hn; nn.GRU's twin would need the r and
        # z parts of its bias_hh held at zero while the n part trains, which torch's optimizers
        # cannot do for part of one tensor.
        raise ValueError(f"--engine torch trains LSTM and RNN char-LMs; a {cfg.cell.upper()} "
                         f"trains on --engine numpy (the default)")
    if getattr(cfg, "layer_norm", False):
        raise ValueError("--engine torch has no twin for --layer-norm (PyTorch has no "
                         "layer-normalised LSTM); it trains on --engine numpy (the default)")
    if cfg.dropout > 0:
        raise ValueError(f"--engine torch does not support --dropout {cfg.dropout}: the masks "
                         f"would come from torch's generator, not lstmlab's, so the run would "
                         f"not be the NumPy engine's; use --dropout 0 or --engine numpy")
    for name in ("dropout_input", "dropout_recurrent", "zoneout", "weight_drop"):
        if getattr(cfg, name, 0.0) > 0:
            flag = "--" + name.replace("_", "-")
            raise ValueError(f"--engine torch does not support {flag}: nn.LSTM has no such "
                             f"option; use --engine numpy")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"--device must be 'cpu' or 'cuda', got {device!r}")


def _twin(torch, embed, rnn, head):
    """The three torch modules as one ``nn.Module`` (what DDP wraps): ``(x, hx) -> (logits,
    final state)``."""

    class CharLMTwin(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.rnn, self.head = embed, rnn, head

        def forward(self, x, hx):
            out, final = self.rnn(self.embed(x), hx)  # (S, B, H)
            return self.head(out), final  # (S, B, V)

    return CharLMTwin()


class TorchEngine:
    """The torch twin of ``model`` with torch's version of lstmlab's ``optimizer``."""

    def __init__(self, model, optimizer, device: str = "cpu", group=None, rows: int = 0):
        _check_supported(model, device)
        if group is not None and device != "cpu":
            raise ValueError(f"--engine torch --device {device} runs in one process; with "
                             f"several processes the torch engine runs on the CPU (--device cpu)")
        torch = self.torch = _import_torch()
        if device == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda: this PyTorch sees no CUDA GPU (torch.cuda."
                             "is_available() is False); use --device cpu")
        self.device = torch.device(device)
        cfg = model.config
        self.perm = _TORCH_PERM if cfg.cell == "lstm" else (0,)
        self.is_lstm = cfg.cell == "lstm"
        dtype = torch.float64 if model.dtype == np.float64 else torch.float32
        nn = torch.nn
        self.embed = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        if self.is_lstm:
            self.rnn = nn.LSTM(cfg.embed_dim, cfg.hidden_size, cfg.num_layers)
        else:
            self.rnn = nn.RNN(cfg.embed_dim, cfg.hidden_size, cfg.num_layers, nonlinearity="tanh")
        self.head = nn.Linear(cfg.hidden_size, cfg.vocab_size)
        for module in (self.embed, self.rnn, self.head):
            module.to(device=self.device, dtype=dtype)
        torch_params = {f"embed.{k}": v for k, v in self.embed.named_parameters()}
        torch_params.update({f"head.{k}": v for k, v in self.head.named_parameters()})
        rnn_params = dict(self.rnn.named_parameters())
        with torch.no_grad():
            for name, p in rnn_params.items():
                if name.startswith("bias_hh"):  # the single bias: this one is zero, untrained
                    p.zero_()
                    p.requires_grad_(False)
        # lstmlab name -> torch parameter, in lstmlab's order (the optimizer's too)
        self.params = {}
        for name in model.params():
            if name.startswith("rnn."):
                self.params[name] = rnn_params[self._torch_rnn_name(name[len("rnn."):])]
            else:
                self.params[name] = torch_params[name]
        self.optimizer = self._make_optimizer(optimizer)
        self.steps_taken = 0
        self.load_from(model, optimizer)
        self.net = _twin(torch, self.embed, self.rnn, self.head)
        self.group, self.rows = group, rows  # rows: S * B, the characters of a global chunk
        self.stop_requested = self.stop_agreed = False  # as GradientSum's, for the trainer
        if group is not None:
            from torch.nn.parallel import DistributedDataParallel
            self.net = group.collective(DistributedDataParallel, self.net)  # broadcasts

    # -- conversions ---------------------------------------------------------------------
    @staticmethod
    def _torch_rnn_name(name: str) -> str:
        kind, suffix = name.split("_", 1)  # "Wx", "l0" (or "l0_reverse")
        return {"Wx": "weight_ih_", "Wh": "weight_hh_", "b": "bias_ih_"}[kind] + suffix

    def _to_torch_layout(self, name: str, a: np.ndarray) -> np.ndarray:
        """An array shaped as lstmlab parameter ``name`` -> the layout of its torch twin."""
        if name.startswith(("rnn.Wx", "rnn.Wh")):
            return _permute_blocks(a.T, self.perm, 0)  # (G·H, D): rows in torch's gate order
        if name.startswith("rnn.b"):
            return _permute_blocks(a, self.perm, 0)  # (G·H,)
        return a

    def _from_torch_layout(self, name: str, a: np.ndarray) -> np.ndarray:
        if name.startswith(("rnn.Wx", "rnn.Wh")):
            return _permute_blocks(a, self.perm, 0).T  # (D, G·H); the permutation is its own inverse
        if name.startswith("rnn.b"):
            return _permute_blocks(a, self.perm, 0)
        return a

    def _tensor(self, name: str, a: np.ndarray):
        t = self.torch.from_numpy(np.ascontiguousarray(self._to_torch_layout(name, a)))
        return t.to(device=self.device, dtype=self.params[name].dtype)

    def _array(self, name: str, t) -> np.ndarray:
        return np.ascontiguousarray(self._from_torch_layout(name, t.detach().cpu().numpy()))

    def _make_optimizer(self, optimizer):
        optim = self.torch.optim
        kind = type(optimizer).__name__
        hp = optimizer.hyperparameters()
        params = list(self.params.values())
        if kind == "SGD":
            return optim.SGD(params, lr=optimizer.lr, momentum=hp["momentum"],
                             dampening=hp["dampening"], nesterov=hp["nesterov"],
                             weight_decay=hp["weight_decay"])
        if kind in ("Adam", "AdamW"):
            cls = optim.Adam if kind == "Adam" else optim.AdamW
            return cls(params, lr=optimizer.lr, betas=tuple(hp["betas"]), eps=hp["eps"],
                       weight_decay=hp["weight_decay"], amsgrad=hp["amsgrad"])
        raise ValueError(f"--engine torch has no twin for the optimizer {kind}")

    def load_from(self, model, optimizer) -> None:
        """Parameters and optimizer state from lstmlab's objects into the twin."""
        torch = self.torch
        model_params = model.params()
        meta, arrays = optimizer.state_dict()
        self.steps_taken = int(meta["step"])
        self.optimizer.state.clear()
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(self._tensor(name, model_params[name]))
                state = {key.split("/", 1)[0]: self._tensor(name, a)
                         for key, a in arrays.items() if key.split("/", 1)[1] == name}
                if state and type(optimizer).__name__ != "SGD":
                    state["step"] = torch.tensor(float(self.steps_taken))
                if state:
                    self.optimizer.state[p] = state

    def store_into(self, model, optimizer) -> None:
        """Parameters and optimizer state from the twin back into lstmlab's objects."""
        model_params = model.params()
        arrays = {}
        for name, p in self.params.items():
            model_params[name][...] = self._array(name, p)
            for key, value in self.optimizer.state.get(p, {}).items():
                if key != "step" and value is not None:
                    arrays[f"{key}/{name}"] = self._array(name, value)
        meta, _ = optimizer.state_dict()
        optimizer.load_state_dict({**meta, "step": self.steps_taken}, arrays)

    def state_arrays(self, state) -> tuple[np.ndarray, ...] | None:
        """The carried state as NumPy ``(L, B, H)`` arrays (for checkpoints)."""
        if state is None:
            return None
        return tuple(s.detach().cpu().numpy() if hasattr(s, "detach") else s for s in state)

    # -- one step ------------------------------------------------------------------------
    def step(self, inputs: np.ndarray, targets: np.ndarray, state, clip: float, lr: float):
        """The twin of :func:`.lm.train_step`: ``(loss, grad_norm, final_state)`` with the
        state as torch tensors on the device (NumPy arrays are accepted too)."""
        torch = self.torch
        x = torch.from_numpy(inputs).to(self.device)  # (S, B)
        y = torch.from_numpy(targets).to(self.device)  # (S, B)
        hx = None
        if state is not None:
            hx = tuple(torch.as_tensor(s).to(device=self.device, dtype=self.params["head.weight"].dtype)
                       for s in state)
            hx = hx if self.is_lstm else hx[0]
        logits, final = self.net(x, hx)  # (S, B, V)
        final = tuple(s.detach() for s in final) if self.is_lstm else (final.detach(),)
        finite = bool(torch.isfinite(logits).all())
        if self.group is None and not finite:
            return float("nan"), float("nan"), final
        self.optimizer.zero_grad(set_to_none=True)
        flat_logits, flat_targets = logits.reshape(-1, logits.shape[-1]), y.reshape(-1)
        if self.group is None:
            loss = torch.nn.functional.cross_entropy(flat_logits, flat_targets)
            loss.backward()
            loss = float(loss.detach())
        else:  # every process joins DDP's all-reduce, even with a NaN (then nobody steps)
            loss_sum = torch.nn.functional.cross_entropy(flat_logits, flat_targets,
                                                         reduction="sum")
            scaled = loss_sum * (self.group.world / self.rows)
            self.group.collective(scaled.backward)  # DDP sums over the processes, / N
            sums = np.array([float(loss_sum.detach()) / self.rows if finite else np.nan,
                             1.0 if self.stop_requested else 0.0])
            self.group.all_reduce(sums)
            loss, self.stop_agreed = float(sums[0]), bool(sums[1] > 0)
            if not math.isfinite(loss):
                return loss, float("nan"), final
        params = list(self.params.values())
        if clip > 0:
            norm = float(torch.nn.utils.clip_grad_norm_(params, clip))
        else:
            norm = math.sqrt(sum(float(torch.sum(p.grad.double() ** 2)) for p in params))
        if math.isfinite(loss) and math.isfinite(norm):
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.optimizer.step()
            self.steps_taken += 1
        return loss, norm, final
