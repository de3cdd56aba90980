"""Language models: backends and the call cache, local inference, GGUF conversion, the grammar,
training examples and the one training module."""

import os

# Models come from local directories only: never wait on (or reach) a model hub. Set here, before
# any submodule imports transformers, so every entry point into lm/ is covered.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
