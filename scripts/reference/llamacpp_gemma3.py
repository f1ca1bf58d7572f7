#!/usr/bin/env python3
"""Gemma 3 270M Q4_K_M (the real file `aik model pull gemma3-270m` caches) run by llama.cpp.

The semantic reference for the gemma3 architecture and the Q4_K/Q6_K/Q5_0/Q8_0 weights of a real
model (tests/it/gemma3.rs): llama.cpp evaluates fixed prompts of token ids (our engine has no
SentencePiece tokenizer yet, so the ids are given) and records the logits at the last position (the top ten, and every 64th of the rest).

Writes crates/infer/tests/data/llamacpp_gemma3.json. Setup as for llamacpp_greedy.py, then:

    aik model pull gemma3-270m
    .venv/bin/python scripts/reference/llamacpp_gemma3.py ~/.cache/aik/models/gemma-3-270m-q4_k_m.gguf
"""

import hashlib
import json
import pathlib
import sys

import llama_cpp
import numpy as np

# "<bos>The capital of France is" and a longer prompt crossing nothing but 18 layers.
PROMPTS = [
    [2, 818, 5279, 529, 7001, 563],
    [2, 818, 5279, 563, 506, 5279, 529, 1403, 236881, 108, 818, 3822, 15356, 236772, 236743, 236800],
]
STRIDE = 64
GREEDY_STEPS = 24
ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "crates" / "infer" / "tests" / "data" / "llamacpp_gemma3.json"


def main():
    path = pathlib.Path(sys.argv[1])
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=64, logits_all=True, n_threads=2, verbose=False)
    runs = []
    for prompt in PROMPTS:
        llm.reset()
        llm.eval(prompt)
        logits = np.asarray(llm.scores[len(prompt) - 1], dtype=np.float32)
        top = [int(i) for i in np.argsort(-logits, kind="stable")[:10]]
        runs.append({
            "prompt": prompt,
            "top10": top,
            "top10_logits": [float(logits[i]) for i in top],
            # Every STRIDE-th logit (the vocabulary is 262,144; all of them would be megabytes).
            "stride": STRIDE,
            "sampled_logits": [round(float(v), 4) for v in logits[::STRIDE]],
        })
    # Greedy decoding from the first prompt, with each step's top1 − top2 margin, so that a
    # divergence can be judged against a near-tie in llama.cpp's own numbers.
    llm.reset()
    llm.eval(PROMPTS[0])
    greedy, margins = [], []
    for step in range(GREEDY_STEPS):
        row = np.asarray(llm.scores[len(PROMPTS[0]) + step - 1], dtype=np.float32)
        best = int(np.argmax(row))
        ordered = np.sort(row)
        greedy.append(best)
        margins.append(float(ordered[-1] - ordered[-2]))
        llm.eval([best])
    result = {
        "generator": "scripts/reference/llamacpp_gemma3.py",
        "text": "The capital of France is",
        "greedy": greedy,
        "margins": margins,
        "llama_cpp_python": llama_cpp.__version__,
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "runs": runs,
    }
    OUT.write_text(json.dumps(result) + "\n")
    for run in runs:
        print(run["prompt"], "top", run["top10"][:5])


if __name__ == "__main__":
    main()
