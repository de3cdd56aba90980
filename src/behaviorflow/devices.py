"""What the compute device can do, for the training loops that choose their precision by it."""

from __future__ import annotations


def bf16_supported(device: str) -> bool:
    """Whether bfloat16 matmuls run natively (CUDA with bf16, or a CPU with AVX512-BF16 / AMX)."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
