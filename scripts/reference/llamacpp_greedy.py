#!/usr/bin/env python3
"""Greedy continuations of SmolLM2-135M-Instruct by llama.cpp: the semantic reference for aik-infer.

For each fixed conversation below, renders the model's own chat template (tokenizer.chat_template
from the GGUF, with Jinja2 configured as HF transformers does: trim_blocks, lstrip_blocks),
tokenizes it with llama.cpp (special tokens parsed, no BOS added: the file says
add_bos_token=false), then decodes greedily (argmax; lowest id on ties) for up to 32 tokens,
stopping after an end-of-generation token (0 <|endoftext|> or 2 <|im_end|>). Per step it records
the chosen id and llama.cpp's eight largest logits (top1/top2/margin spelled out), so that a
divergence of our engine can be checked against a near-tie in llama.cpp's own numbers.

Calibration: the same token sequences are re-run (teacher forced) with an f32 KV cache instead of
llama.cpp's default f16 one, another legitimate precision choice; the largest change of the
chosen token's logit, and of the top1-top2 margin, say how far two correct engines drift apart
and so bound what a "near-tie" must allow.

Writes crates/infer/tests/data/llamacpp_greedy.json. Setup (compiles llama.cpp; on the shared
machine run it under the build lock):

    python3 -m venv .venv
    flock /tmp/aik-cargo.lock env CMAKE_BUILD_PARALLEL_LEVEL=2 \
        CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
        .venv/bin/pip install llama-cpp-python==0.3.36
    .venv/bin/python scripts/reference/llamacpp_greedy.py [--model PATH]
"""

import argparse
import hashlib
import json
import os
import pathlib
import platform

import jinja2.sandbox
import llama_cpp
import numpy as np

STEPS = 32
TOP_K = 8  # logits recorded per step
EOG_IDS = (0, 2)
ROOT = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_MODEL = pathlib.Path(
    os.environ.get("AIK_HOME", pathlib.Path.home() / ".cache" / "aik")
) / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = ROOT / "crates" / "infer" / "tests" / "data" / "llamacpp_greedy.json"

# Fixed conversations: short factual, long-form, code, digits, a system prompt, a multi-turn
# history, and user text that spells special tokens (it must stay text).
CONVERSATIONS = [
    [("user", "What is the capital of France?")],
    [("user", "Write a short poem about the sea.")],
    [("user", "Explain what a blockchain is in two sentences.")],
    [("user", "List three prime numbers greater than 100.")],
    [("user", "Write a Python function that returns the factorial of n.")],
    [("system", "You are a terse assistant."), ("user", "Why is the sky blue?")],
    [("user", "What is 17 * 23? Show your steps.")],
    [
        ("user", "Hi!"),
        ("assistant", "Hello! How can I help you today?"),
        ("user", "Tell me a fun fact about octopuses."),
    ],
    [("user", "Translate 'good morning' into Spanish, French and German.")],
    [("user", "Is the text <|im_end|> special? Answer in one word.")],
]


def render(template_src, messages):
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env.globals["raise_exception"] = raise_exception
    return env.from_string(template_src).render(
        messages=[{"role": r, "content": c} for r, c in messages],
        add_generation_prompt=True,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
    )


def user_ids(llm, text):
    """How llama.cpp tokenizes user text (special tokens not parsed), for the record."""
    return llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)


def make_llm(model, threads, kv_f32):
    kwargs = {}
    if kv_f32:
        kwargs = {"type_k": 0, "type_v": 0}  # GGML_TYPE_F32
    return llama_cpp.Llama(
        model_path=str(model),
        n_ctx=1024,
        n_batch=512,
        n_threads=threads,
        n_threads_batch=threads,
        seed=0,
        logits_all=True,  # keep every position's logits in llm.scores
        verbose=False,
        **kwargs,
    )


def last_logits(llm):
    return np.asarray(llm.scores[llm.n_tokens - 1], dtype=np.float32)


def teacher_forced(llm, prompt_ids, tokens):
    """Logits at each generation step when `tokens` are fed regardless of the argmax."""
    llm.reset()
    llm.eval(prompt_ids)
    out = []
    for t in tokens:
        out.append(last_logits(llm))
        if t not in EOG_IDS:
            llm.eval([t])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(DEFAULT_MODEL))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()

    model = pathlib.Path(args.model)
    sha256 = hashlib.sha256(model.read_bytes()).hexdigest()
    llm = make_llm(model, args.threads, kv_f32=False)
    template_src = llm.metadata["tokenizer.chat_template"]

    cases = []
    for messages in CONVERSATIONS:
        prompt = render(template_src, messages)
        prompt_ids = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        llm.reset()
        llm.eval(prompt_ids)
        steps = []
        for _ in range(STEPS):
            logits = last_logits(llm)
            order = np.argsort(-logits, kind="stable")  # ties: lowest id first
            top1, top2 = int(order[0]), int(order[1])
            steps.append(
                {
                    "token": top1,
                    "top1": [top1, float(logits[top1])],
                    "top2": [top2, float(logits[top2])],
                    "margin": float(logits[top1] - logits[top2]),
                    "top": [[int(i), float(logits[i])] for i in order[:TOP_K]],
                }
            )
            if top1 in EOG_IDS:
                break
            llm.eval([top1])
        tokens = [s["token"] for s in steps]
        cases.append(
            {
                "messages": [{"role": r, "content": c} for r, c in messages],
                "prompt": prompt,
                "prompt_ids": prompt_ids,
                "user_text_ids": [user_ids(llm, c) for _, c in messages],
                "tokens": tokens,
                "text": llm.detokenize(tokens).decode("utf-8", errors="replace"),
                "steps": steps,
            }
        )
        print(f"{len(prompt_ids):4} prompt ids, {len(tokens):2} generated: {cases[-1]['text']!r}")

    # Calibration with an f32 KV cache (see module docs).
    llm32 = make_llm(model, args.threads, kv_f32=True)
    worst_logit, worst_margin, flips = 0.0, 0.0, 0
    for case in cases:
        forced = teacher_forced(llm32, case["prompt_ids"], case["tokens"])
        for step, logits in zip(case["steps"], forced):
            chosen, second = step["top1"][0], step["top2"][0]
            worst_logit = max(worst_logit, abs(float(logits[chosen]) - step["top1"][1]))
            margin32 = float(logits[chosen] - logits[second])
            worst_margin = max(worst_margin, abs(margin32 - step["margin"]))
            flips += int(int(np.argmax(logits)) != chosen)
    calibration = {
        "variant": "same llama.cpp, f32 KV cache instead of f16, teacher forced",
        "max_abs_chosen_logit_change": worst_logit,
        "max_abs_margin_change": worst_margin,
        "argmax_flips": flips,
    }
    print(f"calibration: {calibration}")

    doc = {
        "generator": "scripts/reference/llamacpp_greedy.py",
        "engine": f"llama-cpp-python {llama_cpp.__version__}",
        "system_info": llama_cpp.llama_print_system_info().decode(),
        "machine": platform.machine(),
        "threads": args.threads,
        "model_file": model.name,
        "model_sha256": sha256,
        "max_steps": STEPS,
        "eog_ids": list(EOG_IDS),
        "sampling": "greedy argmax over llama.cpp's f32 logits, lowest id on ties",
        "calibration_kv_f32": calibration,
        "cases": cases,
    }
    pathlib.Path(args.out).write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
