"""Self-modifying Titans (arXiv §8.1-8.2, Eqs. 83-93): the in-context learner of HOPE.

Axis key: b batch (one independent context each), n tokens, d width, h memory hidden width.

Every sample is its own context: the fast memories start from the (meta-learned) initial states at the
first token of each sequence and are never shared across the batch. Choices where the paper is silent:

- eta and alpha: scalars per token read out of the eta/alpha memories by a zero-initialised linear map,
  `eta_t = memory_lr * 2 sigmoid(r_eta . M_eta(x_t))` in (0, 2 memory_lr) and
  `alpha_t = 1 - memory_decay * 2 sigmoid(r_alpha . M_alpha(x_t))` in (1 - 2 memory_decay, 1], so at
  initialisation every token writes with step `memory_lr` and retains `1 - memory_decay`.
- The data-dependent DGD decay acts on each memory's input-side weight (`memory.mlp_memory_dgd_step`).
- No momentum (Eq. 88 has none). The short causal depthwise convolution (window 4) mixes each token
  with its predecessors before any projection.
- Gradient flow, `grad_mode`: "meta" backpropagates the task loss through every inner write, so the
  initial states M_{.,0} are meta-learned (Eqs. 79-82); "stopgrad" detaches all writes: the initial
  states are then fixed at their random init (they receive no gradient and are not trainable), and only
  the read path (W_q, the convolution and what feeds it) learns from the task loss.
- `memory_scope`: "sample" (the paper's setting for a sequence model) restarts every fast memory from its
  initial state at each sample, so nothing learned in context survives the sample. "stream" (this project's
  extension, for continual streams) carries the memories along the stream: every sample of a training minibatch
  starts from M_0 + D, and after the minibatch D becomes the batch mean of the final states minus M_0, detached
  (the minibatch is one chunk of the stream, its samples parallel contexts from one boundary state, as tokens
  are within a chunk in Eq. 90). D is a buffer: the outer optimizer never sees it, M_0 keeps learning, and
  evaluation reads D without writing it. `reset_stream_memory()` sets D back to 0.
- `memory_hidden = 0` makes the main memory a linear matrix S (the linear memory of Eqs. 92-93), with static
  k, v, eta, alpha projections (`self_modify = false`, Eqs. 76-78). It runs as one call of the delta-rule
  kernel (`nlbench.kernels.delta_rule`: numba on CPU, Triton on GPU), which computes the exact token-by-token
  recurrence in place of the Python loop over tokens. As Eqs. 76-78 print, it reads after the write,
  y_t = S_t q_t. `memory_loss` picks the inner loss: "l2" is Eq. 93, with its gradient at the state that starts
  each `memory_chunk_size` chunk, and "dot" is Eq. 92, the delta rule with retention.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from nlbench.kernels.dispatch import delta_rule, mlp_memory_chunk, numba_threads, resolve_backend
from nlbench.nn.memory import MLPMemory, mlp_memory_read
from nlbench.nn.write_history import WriteHistory

SELF_MODIFYING = ("k", "v", "eta", "alpha")  # the memories that produce the write signals (Eq. 84)
GRAD_MODES = ("meta", "stopgrad")
MEMORY_LOSSES = ("l2", "dot")  # the inner loss of a linear memory: Eq. 93 or Eq. 92
MEMORY_SCOPES = ("sample", "stream")  # how long a fast memory lives
MEMORY_RESETS = ("never", "experience")  # when a memory carried along the stream starts again from M_0
# How the MLP memories are computed, all with equal numbers up to float rounding: "factored" keeps each memory as
# its initial weights plus its writes' rank-one factors (nlbench.nn.write_history, loops over chunks only);
# "materialised" updates per-sample weight matrices token by token (the original path, kept as the reference the
# others are tested against); "kernel" does what "materialised" does in one fused kernel call per chunk
# (`kernels.dispatch.mlp_memory_chunk`: numba on CPU, Triton on CUDA); "auto" picks, per forward pass, the kernel
# where numba runs it and the batch is small for its threads, else "factored" (on CUDA too: the Triton kernel has
# not been timed on a GPU, so nothing says it wins there).
IMPLEMENTATIONS = ("auto", "factored", "materialised", "kernel")
# "auto" runs the kernel while the batch has at most this many samples per numba thread: the kernel works per sample
# (in parallel over samples x memories), the factored path shares the initial weights' products across the batch.
# Measured (one training step of the k/v/eta/alpha and main memories, d = h = 32, factored over kernel time): with
# 2 threads, 1.8x / 1.1x / 1.0x / 0.9x at batch 16 / 32 / 48 / 64 on 8 tokens, and 2.1x / 1.5x / 1.2x / 1.0x on
# 28 tokens; with 1 thread, 1.2x / 0.9x at batch 16 / 32 on 8 tokens and 1.7x / 1.2x on 28 tokens.
KERNEL_SAMPLES_PER_THREAD = 24


class CausalConv(nn.Module):
    """Depthwise convolution over tokens that sees only the current and the `window - 1` previous ones;
    initialised to the identity so the untrained block reads its input unchanged."""

    def __init__(self, dim: int, window: int = 4):
        super().__init__()
        self.window = window
        self.conv = nn.Conv1d(dim, dim, window, groups=dim, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[:, 0, -1] = 1.0

    def forward(self, x: Tensor) -> Tensor:  # (b, n, d)
        # y_t = sum_w W[:, w] x_{t - window + 1 + w}: the depthwise convolution as a weighted sum of shifted
        # windows, which is what `nn.Conv1d` computes, at a fraction of its CPU backward cost for these sizes
        # (the Conv1d only holds the weight, so checkpoints keep their keys)
        windows = F.pad(x, (0, 0, self.window - 1, 0)).unfold(1, self.window, 1)  # (b, n, d, window)
        return (windows * self.conv.weight[:, 0]).sum(-1)


def init_memory_state(dim: int, hidden: int, copies: int | None = None) -> nn.ParameterDict:
    """Initial state M_0 of a residual MLP memory (Eq. 89), fan-in scaled; `copies` stacks independent
    memories on a leading axis so they update in one batched op."""
    lead = () if copies is None else (copies,)
    return nn.ParameterDict({
        "w1": nn.Parameter(torch.randn(*lead, dim, hidden) / math.sqrt(hidden)),
        "w2": nn.Parameter(torch.randn(*lead, hidden, dim) / math.sqrt(dim)),
    })


def _concat_tokens(chunks: list[tuple[Tensor, ...]]) -> tuple[Tensor, ...]:
    """Per-chunk (k, v, eta, alpha) joined along the token axis."""
    return tuple(torch.cat(parts, dim=1) for parts in zip(*chunks, strict=True))


def check_memory(memory_hidden: int, self_modify: bool, memory_loss: str) -> None:
    """The combinations the memory supports; ValueError names the one asked for."""
    if memory_loss not in MEMORY_LOSSES:
        raise ValueError(f"memory_loss must be one of {MEMORY_LOSSES}, got {memory_loss!r}")
    if memory_hidden == 0 and self_modify:
        raise ValueError("a linear memory (memory_hidden = 0) has static k, v, eta, alpha projections: "
                         "it needs self_modify = false")
    if memory_hidden > 0 and memory_loss != "l2":
        raise ValueError(f"memory_loss = {memory_loss!r} needs a linear memory (memory_hidden = 0); "
                         "the MLP memory learns with the L2 loss")


class SelfModifyingTitans(nn.Module):
    """y_t = M_memory,t-1(q_t) with k, v, eta, alpha produced by memories that update themselves in context.

    `self_modify=False` is the ablation of Eqs. 76-78: k, v, eta, alpha come from static projections and
    only the main memory learns in context, towards v_t itself. `memory_hidden=0` is a linear main memory
    (requires `self_modify=False`) computed by the delta-rule kernel on `kernel_backend`.
    """

    def __init__(self, dim: int, memory_hidden: int, *, chunk_size: int = 2, memory_chunk_size: int = 4,
                 memory_lr: float = 0.5, memory_decay: float = 0.01, self_modify: bool = True,
                 grad_mode: str = "meta", memory_loss: str = "l2", conv_window: int = 4,
                 kernel_backend: str = "auto", memory_scope: str = "sample", implementation: str = "auto"):
        super().__init__()
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
        self.implementation = implementation
        if grad_mode not in GRAD_MODES:
            raise ValueError(f"grad_mode must be one of {GRAD_MODES}, got {grad_mode!r}")
        if memory_scope not in MEMORY_SCOPES:
            raise ValueError(f"memory_scope must be one of {MEMORY_SCOPES}, got {memory_scope!r}")
        self.memory_scope = memory_scope
        check_memory(memory_hidden, self_modify, memory_loss)
        self.linear, self.memory_loss, self.kernel_backend = memory_hidden == 0, memory_loss, kernel_backend
        self.chunk_size, self.memory_chunk_size = chunk_size, memory_chunk_size
        self.memory_lr, self.memory_decay = memory_lr, memory_decay
        self.self_modify, self.grad_mode = self_modify, grad_mode
        self.conv = CausalConv(dim, conv_window)
        self.w_q = nn.Linear(dim, dim, bias=False)  # q is the only non-adaptive projection (Eq. 83)
        self.initial_states = nn.ModuleDict({"memory": nn.ParameterDict(
            {"S": nn.Parameter(torch.randn(dim, dim) / math.sqrt(dim))}) if self.linear
            else init_memory_state(dim, memory_hidden)})
        if self_modify:  # the k, v, eta, alpha memories, stacked in that order (SELF_MODIFYING)
            self.initial_states["signals"] = init_memory_state(dim, memory_hidden, copies=len(SELF_MODIFYING))
        else:
            self.w_k = nn.Linear(dim, dim, bias=False)
            self.w_v = nn.Linear(dim, dim, bias=False)
        self.eta_readout = nn.Linear(dim, 1)
        self.alpha_readout = nn.Linear(dim, 1)
        for readout in (self.eta_readout, self.alpha_readout):
            nn.init.zeros_(readout.weight)
            nn.init.zeros_(readout.bias)
        self.carried = nn.ModuleDict()  # memory_scope = "stream": the offsets D from each initial state
        if memory_scope == "stream":
            for name, state in self.initial_states.items():
                holder = nn.Module()
                for key, p in state.items():
                    holder.register_buffer(key, torch.zeros_like(p))
                self.carried[name] = holder
        if grad_mode == "stopgrad":  # write-only parameters: nothing reaches them without meta-gradients
            write_only = [self.initial_states, self.eta_readout, self.alpha_readout]
            write_only += [self.w_k, self.w_v] if not self_modify else []
            for module in write_only:
                module.requires_grad_(False)

    def _write(self, x: Tensor) -> Tensor:
        """What flows into a write: detached in stop-grad mode."""
        return x.detach() if self.grad_mode == "stopgrad" else x

    def _start(self, name: str, key: str) -> Tensor:
        """Where a sample's fast memory starts: M_0, plus the carried offset D along a stream."""
        w = self._write(self.initial_states[name][key])
        return w + getattr(self.carried[name], key) if name in self.carried else w

    def _carries(self, name: str) -> bool:
        return name in self.carried and self.training

    def _carry(self, name: str, finals: dict[str, Tensor]) -> None:
        """After a training minibatch, D = mean over the batch of the final states - M_0 (stream scope)."""
        if self._carries(name):
            with torch.no_grad():
                for key, final in finals.items():
                    getattr(self.carried[name], key).copy_(final.mean(0) - self.initial_states[name][key])

    def reset_stream_memory(self) -> None:
        for holder in self.carried.values():
            for buffer in holder.buffers():
                buffer.zero_()

    def starts(self, name: str) -> MLPMemory:
        """The state every sample of the batch starts from, shared: `(..., d, h), (..., h, d)`."""
        return MLPMemory(self._start(name, "w1"), self._start(name, "w2"))

    def initial_state(self, name: str, batch: int) -> MLPMemory:
        return MLPMemory(*(w.expand(batch, *w.shape) for w in self.starts(name)))

    def gates(self, eta_src: Tensor, alpha_src: Tensor) -> tuple[Tensor, Tensor]:
        eta = self.memory_lr * 2 * torch.sigmoid(self.eta_readout(eta_src).squeeze(-1))
        alpha = 1 - self.memory_decay * 2 * torch.sigmoid(self.alpha_readout(alpha_src).squeeze(-1))
        return eta, alpha

    def write_signals(self, u: Tensor, factored: bool | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """k, v, eta, alpha for every token; with self-modification, the k/v/eta/alpha memories learn too, on the
        factored path or on per-sample weights (`factored`: the forward pass's choice, else `_factored(u)`)."""
        if not self.self_modify:
            eta, alpha = self.gates(u, u)
            k, v = F.normalize(self.w_k(u), dim=-1), F.normalize(self.w_v(u), dim=-1)
            k, v, eta, alpha = (self._write(t) for t in (k, v, eta, alpha))
            return k, v, eta, alpha
        if self._factored(u) if factored is None else factored:
            return self._factored_signals(u)
        C = self.chunk_size
        state = self.initial_state("signals", u.shape[0])  # (b, 4, d, h), (b, 4, h, d)
        reads = mlp_memory_read(self.starts("signals"), u[:, None, :C])  # (b, 4, C, d), at the shared M_0
        outs: list[tuple[Tensor, ...]] = []
        for start in range(0, u.shape[1], C):
            # Eqs. 84-85 with every state taken at the end of the previous chunk (Eq. 90).
            k, v, eta, alpha = self._signals(reads.transpose(0, 1))
            outs.append((k, v, eta, alpha))
            following = u[:, start + C:start + 2 * C] if start + C < u.shape[1] else None
            # v_hat = M(v) (Eq. 86); the next chunk's reads come back at the state this chunk ends in
            state, _, reads = self._chunk(state, k, v, eta, alpha, read_target=True, x_next=following)
        self._carry("signals", {"w1": state.w1, "w2": state.w2})
        return _concat_tokens(outs)

    def _chunk(self, state: MLPMemory, k: Tensor, target: Tensor, eta: Tensor, alpha: Tensor,
               q: Tensor | None = None, read_target: bool = False, x_next: Tensor | None = None
               ) -> tuple[MLPMemory, Tensor | None, Tensor | None]:
        """One chunk of writes to the per-sample weights `(b, m, d, h), (b, m, h, d)` (Eqs. 86-93): one call of
        the fused kernel, or the reference's PyTorch ops for `implementation = "materialised"`."""
        backend = "reference" if self.implementation == "materialised" else self.kernel_backend
        w1, w2, y, y_next = mlp_memory_chunk(*state, k, target, eta, alpha, q, read_target, x_next, backend=backend)
        return MLPMemory(w1, w2), y, y_next

    def _factored(self, x: Tensor) -> bool:
        """Whether the MLP memories of a forward pass over `x` run on the factored path (see IMPLEMENTATIONS)."""
        if self.implementation != "auto":
            return self.implementation == "factored"
        if resolve_backend(self.kernel_backend, x.device) != "numba":
            return True
        return x.shape[0] > KERNEL_SAMPLES_PER_THREAD * numba_threads()

    def _signals(self, reads: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """k, v (unit length), eta, alpha of a chunk from the reads `(4, b, C, d)` of the k, v, eta, alpha memories."""
        k, v = F.normalize(reads[:2], dim=-1).unbind(0)
        eta, alpha = self.gates(reads[2], reads[3])
        k, v, eta, alpha = (self._write(t) for t in (k, v, eta, alpha))
        return k, v, eta, alpha

    def linear_memory(self, q: Tensor, k: Tensor, v: Tensor, eta: Tensor, alpha: Tensor) -> Tensor:
        """y_t = S_t q_t after S_t = S_{t-1} (alpha_t I - eta_t k_t k_t^T) + eta_t (v_t - B_t k_t) k_t^T, with
        B_t the state that starts t's chunk for the L2 loss (Eq. 93) and B_t = 0 for the dot product (Eq. 92)."""
        S0 = self._start("memory", "S").expand(q.shape[0], 1, -1, -1)
        chunk = self.memory_chunk_size if self.memory_loss == "l2" else 0
        y, final = delta_rule(*(t.unsqueeze(1) for t in (q, k, v, eta, alpha)), S0, chunk=chunk,
                              backend=self.kernel_backend)
        self._carry("memory", {"S": final.squeeze(1)})
        return y.squeeze(1)

    def forward(self, x: Tensor) -> Tensor:  # (b, n, d) -> (b, n, d)
        u = F.normalize(self.conv(x), dim=-1)  # memories are read at the unit scale they are written at
        q = F.normalize(self.w_q(u), dim=-1)
        factored = self._factored(x)  # one choice for all the memories of the pass
        k, v, eta, alpha = self.write_signals(u, factored)
        if self.linear:
            return self.linear_memory(q, k, v, eta, alpha)
        if factored:
            return self._factored_memory(q, k, v, eta, alpha)
        state = MLPMemory(*(w[:, None] for w in self.initial_state("memory", x.shape[0])))  # m = 1
        ys = []
        for start in range(0, x.shape[1], self.memory_chunk_size):
            # towards v_hat = M(v) (Eq. 86), or v itself without self-modification
            qc, kc, vc, ec, ac = (t[:, start:start + self.memory_chunk_size] for t in (q, k, v, eta, alpha))
            state, y, _ = self._chunk(state, kc, vc, ec, ac, q=qc, read_target=self.self_modify)
            ys.append(y[:, 0])
        self._carry("memory", {"w1": state.w1[:, 0], "w2": state.w2[:, 0]})
        return torch.cat(ys, dim=1)

    def _factored_signals(self, u: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """`write_signals` on the factored memories: the same Eqs. 84-90, looping over chunks only."""
        memories = WriteHistory(self.starts("signals"), u.shape[0])  # m = 4: k, v, eta, alpha
        outs: list[tuple[Tensor, ...]] = []
        for start in range(0, u.shape[1], self.chunk_size):
            k, v, eta, alpha = self._signals(memories.read(u[:, start:start + self.chunk_size]))
            outs.append((k, v, eta, alpha))
            memories.write(k, v, eta, alpha, read_target=True)
        if self._carries("signals"):
            self._carry("signals", memories.state()._asdict())
        return _concat_tokens(outs)

    def _factored_memory(self, q: Tensor, k: Tensor, v: Tensor, eta: Tensor, alpha: Tensor) -> Tensor:
        """The main MLP memory on the factored path: y_t = M_{t-1}(q_t) (Eq. 83), writes by Eqs. 88-93."""
        memory = WriteHistory(MLPMemory(*(w[None] for w in self.starts("memory"))), q.shape[0])
        ys = []
        for start in range(0, q.shape[1], self.memory_chunk_size):
            qc, kc, vc, ec, ac = (t[:, start:start + self.memory_chunk_size] for t in (q, k, v, eta, alpha))
            # towards v_hat = M(v) (Eq. 86), or v itself without self-modification
            ys.append(memory.write(kc, vc, ec, ac, q=qc, read_target=self.self_modify)[0])
        if self._carries("memory"):
            self._carry("memory", {key: w[:, 0] for key, w in memory.state()._asdict().items()})
        return torch.cat(ys, dim=1)
