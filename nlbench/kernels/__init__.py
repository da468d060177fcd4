"""Hot-path kernels (numba on CPU, Triton on GPU) behind one dispatcher, each held to a PyTorch reference."""
