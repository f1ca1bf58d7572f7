#!/usr/bin/env python3
"""Perplexity of SmolLM2-135M-Instruct on crates/infer/tests/data/perplexity.txt by llama.cpp.

The reference for `aik eval perplexity` (aik_infer::perplexity): the same rule as llama.cpp's
`llama-perplexity` tool with its defaults, run through llama-cpp-python's bindings to the same
llama.cpp: tokenize the whole text as plain text (BOS first when the GGUF's
tokenizer.ggml.add_bos_token says so), cut floor(tokens / ctx) chunks, replace each chunk's first
token with BOS when the model adds one, evaluate each chunk from an empty KV cache in one batch
with logits at every position, and score the second half: for i in ctx/2 .. ctx-1 the logits at
i predict token i+1, nll += -(l[tok] - max(l) - ln sum exp(l - max(l))) with the exponentials in
f32 summed in f64; ppl = exp(nll / scored).

Writes crates/infer/tests/data/llamacpp_perplexity.json (one entry per context size), which the
test command compares ours against (within 1 %, and the token count exactly), so llama.cpp is
not built there. Setup as for llamacpp_greedy.py (compiles llama.cpp once):

    python3 -m venv .venv
    CMAKE_BUILD_PARALLEL_LEVEL=2 \
        CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
        .venv/bin/pip install llama-cpp-python==0.3.36 numpy
    .venv/bin/python scripts/reference/llamacpp_perplexity.py [--model PATH]
"""

import argparse
import hashlib
import json
import os
import pathlib
import platform

import llama_cpp
import numpy as np

CONTEXTS = (128, 256)
ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_MODEL = pathlib.Path(
    os.environ.get("AIK_HOME", pathlib.Path.home() / ".cache" / "aik")
) / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
TEXT = ROOT / "crates" / "infer" / "tests" / "data" / "perplexity.txt"
OUT = ROOT / "crates" / "infer" / "tests" / "data" / "llamacpp_perplexity.json"


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def perplexity(model_path, text, ctx):
    llm = llama_cpp.Llama(
        model_path=str(model_path),
        n_ctx=ctx,
        n_batch=ctx,
        n_ubatch=ctx,
        logits_all=True,
        n_threads=2,
        seed=0,
        verbose=False,
    )
    add_bos = str(llm.metadata.get("tokenizer.ggml.add_bos_token", "false")).lower() == "true"
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=False)
    chunks = len(tokens) // ctx
    assert chunks >= 2, f"{len(tokens)} tokens: fewer than two chunks of {ctx}"
    bos = llm.token_bos()
    first = ctx // 2
    nll = 0.0
    scored = 0
    for c in range(chunks):
        batch = list(tokens[c * ctx:(c + 1) * ctx])
        if add_bos:
            batch[0] = bos
        llm.reset()
        llm.eval(batch)
        logits = np.asarray(llm.scores[:ctx], dtype=np.float32)
        for i in range(first, ctx - 1):
            row = logits[i]
            top = row.max()
            total = float(np.exp(row - top, dtype=np.float32).astype(np.float64).sum())
            nll -= float(row[batch[i + 1]] - top) - np.log(total)
            scored += 1
    return {
        "ctx": ctx,
        "ppl": float(np.exp(nll / scored)),
        "chunks": chunks,
        "tokens": len(tokens),
        "scored": scored,
        "nll": nll,
        "add_bos": add_bos,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=pathlib.Path, default=DEFAULT_MODEL)
    args = parser.parse_args()
    text = TEXT.read_text(encoding="utf-8")
    result = {
        "generator": "scripts/reference/llamacpp_perplexity.py",
        "llama_cpp_python": llama_cpp.__version__,
        "machine": platform.machine(),
        "model_sha256": sha256(args.model),
        "text_sha256": sha256(TEXT),
        "kv_cache": "f16 (llama.cpp's default)",
        "results": [perplexity(args.model, text, ctx) for ctx in CONTEXTS],
    }
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["results"], indent=2))


if __name__ == "__main__":
    main()
