#!/usr/bin/env python3
"""Gemma 3's SentencePiece vocabulary tokenized by llama.cpp: the reference for our SPM tokenizer
(tests/it/gemma3.rs). A generated corpus (words in several scripts, digits, punctuation, runs of
spaces, newlines and tabs, which Gemma has user-defined tokens for, control-token text typed as
plain text, emoji and rare characters that need byte fallback) is tokenized as plain text
(`add_bos=False, special=False`).

Writes crates/infer/tests/data/llamacpp_gemma3_tokens.json. Setup as for llamacpp_greedy.py, then:

    .venv/bin/python scripts/reference/llamacpp_gemma3_tokens.py ~/.cache/aik/models/gemma-3-270m-q4_k_m.gguf
"""

import hashlib
import json
import pathlib
import random
import sys

import llama_cpp

COUNT = 1500
ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "crates" / "infer" / "tests" / "data" / "llamacpp_gemma3_tokens.json"

WORDS = [
    "the", "The", "capital", "of", "France", "is", "Paris", "blockchain", "kernel", "verify",
    "Ethereum", "token", "don't", "it's", "WE'LL", "naïve", "café", "Zürich", "straße", "mañana",
    "Москва", "привет", "日本語", "東京", "中文", "한국어", "العربية", "שלום", "हिन्दी", "ελληνικά",
    "function", "return", "0x1234abcd", "snake_case", "camelCase", "https://example.com/a?b=c",
]
PIECES = [
    " ", "  ", "   ", "\n", "\n\n", "\n\n\n", "\t", "\t\t", " \n", "\r\n", ".", ",", "!", "?", "...",
    "—", "–", "(", ")", "[", "]", "{", "}", "\"", "'", "`", "#", "$", "%", "&", "*", "+", "=",
    "<start_of_turn>", "<end_of_turn>", "<bos>", "<start_of_image>", "[multimodal]", "<unused5>",
    "🙂", "🚀", "👨‍👩‍👧", "𝔘𝔫𝔦", "\u00a0", "\u2581", "\u200b", "½", "①", "٣", "\x7f", "\x01",
]


def generate(rng):
    parts = []
    for _ in range(rng.randint(1, 12)):
        kind = rng.random()
        if kind < 0.45:
            parts.append(rng.choice(WORDS))
        elif kind < 0.6:
            parts.append(str(rng.randint(0, 10 ** rng.randint(1, 9))))
        elif kind < 0.95:
            parts.append(rng.choice(PIECES))
        else:
            parts.append(chr(rng.choice([rng.randint(0x20, 0x7e), rng.randint(0xa0, 0x2fff), rng.randint(0x1f300, 0x1faff), rng.randint(0x20000, 0x2a6df)])))
        if rng.random() < 0.6:
            parts.append(" ")
    return "".join(parts)


def main():
    path = pathlib.Path(sys.argv[1])
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=16, vocab_only=True, verbose=False)
    rng = random.Random(20261205)
    texts = ["", " ", "Hello world", "  leading", "trailing  ", "\n\n\n\n", "\t\t\tx", "a\u2581b"]
    texts += [generate(rng) for _ in range(COUNT)]
    cases = []
    for text in texts:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        cases.append({"text": text, "ids": ids})
    result = {
        "generator": "scripts/reference/llamacpp_gemma3_tokens.py",
        "llama_cpp_python": llama_cpp.__version__,
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "cases": cases,
    }
    OUT.write_text(json.dumps(result, ensure_ascii=False) + "\n")
    print(len(cases), "cases,", sum(len(c["ids"]) for c in cases), "tokens")


if __name__ == "__main__":
    main()
