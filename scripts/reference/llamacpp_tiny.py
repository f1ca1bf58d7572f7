#!/usr/bin/env python3
"""Tiny generated Llama models of every weight type aik-infer loads, run by llama.cpp.

The semantic reference for the weight types (tests/it/quant_types.rs): for each model written by
`cargo run -p aik-infer --example tiny_models -- DIR` (the default tiny spec with every matrix and
the tied embedding of one type: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0; at width 256,
Q4_K with a Q6_K embedding, and Q2_K, Q3_K, Q5_K and Q6_K throughout; two F32 models with
RoPE scaling: Llama 3.1's rope_freqs.weight divisors, and linear scaling by 4; and a Qwen 2 model
with q/k/v biases and NEOX RoPE; a Gemma 3 model with wide heads, q/k norms, post-norms,
GELU and windowed layers), llama.cpp evaluates a
fixed prompt of token ids and records the logits at its last position, then decodes greedily
(argmax, lowest id on ties) for STEPS tokens, recording each step's top1 - top2 margin so that a
divergence can be judged against a near-tie in llama.cpp's own numbers.

Writes crates/infer/tests/data/llamacpp_tiny.json. Setup as for llamacpp_greedy.py, then:

    cargo run -p aik-infer --example tiny_models -- /tmp/aik-tiny
    .venv/bin/python scripts/reference/llamacpp_tiny.py /tmp/aik-tiny
"""

import hashlib
import json
import pathlib
import sys

import llama_cpp
import numpy as np

PROMPT = [1, 5, 9, 13, 17, 21, 25, 29, 33, 37]
STEPS = 16
MODELS = ["F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "rope-llama3", "rope-linear", "qwen2", "gemma3"]
ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "crates" / "infer" / "tests" / "data" / "llamacpp_tiny.json"


def run(path):
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=64, logits_all=True, n_threads=2, verbose=False)
    llm.eval(PROMPT)
    prompt_logits = [float(v) for v in np.asarray(llm.scores[len(PROMPT) - 1], dtype=np.float32)]
    tokens, margins = [], []
    for step in range(STEPS):
        row = np.asarray(llm.scores[len(PROMPT) + step - 1], dtype=np.float32)
        best = int(np.argmax(row))  # the first (lowest id) maximum
        ordered = np.sort(row)
        tokens.append(best)
        margins.append(float(ordered[-1] - ordered[-2]))
        llm.eval([best])
    return {
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "prompt_logits": prompt_logits,
        "greedy": tokens,
        "margins": margins,
    }


def main():
    directory = pathlib.Path(sys.argv[1])
    result = {
        "generator": "scripts/reference/llamacpp_tiny.py",
        "llama_cpp_python": llama_cpp.__version__,
        "prompt": PROMPT,
        "models": {name: run(directory / f"tiny-{name}.gguf") for name in MODELS},
    }
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    for ty, model in result["models"].items():
        print(ty, model["greedy"], "min margin %.3f" % min(model["margins"]))


if __name__ == "__main__":
    main()
