#!/usr/bin/env python3
"""Judge parity fixture: MedVLMBench's GPT-score prompt (system + user message, rendered with the
model's chat template by transformers' `apply_chat_template`) given to SmolLM2-135M-Instruct Q4_1
(loaded dequantised to float32 by transformers with `gguf_file=`), and its greedy reply.

Usage (from the repository root, with the venv of tools/setup_venv.sh):

    tools/.venv/bin/python tools/make_judge_reference.py

Writes tests/fixtures/decoder/reference/smollm2-judge.json: per case the templated prompt, its
token ids, the 48 greedy new ids and text, the top-2 logit margins (how close each greedy step was
to a tie), and whether the reply's first line parses as a score from 1 to 100 (as the protocol
needs; a 135M model rarely manages it).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_decoder_fixtures as dec  # noqa: E402  (sets the offline environment first)

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

SYSTEM = "You are a helpful and precise assistant for checking the quality of the answer of medical VQA task"
RULE = ("We would like to request your feedback on the performance of the AI assistant in response to the user "
        "question displayed above, with reference to the provided ground truth answer. Please rate the helpfulness, "
        "relevance, accuracy, and level of detail of the assistant's response. Assign an overall score on a scale of "
        "1 to 100, where a higher score indicates better overall performance. Please first output a single line "
        "containing only the score (a single numeric value). In the subsequent line, please provide a comprehensive "
        "explanation of your evaluation, referencing the ground truth answer to justify your score. Ensure your "
        "judgment is unbiased and objective.")
CASES = [
    ("What does this chest X-ray show?", "pneumonia", "a normal chest"),
    ("What is the diabetic retinopathy grade of this fundus photograph?", "2", "3"),
    ("Which organ is abnormal?", "left kidney", "the right kidney has a cyst"),
]
MAX_NEW = 48


def user_message(q: str, a: str, c: str) -> str:
    return (f"[Question]\n{q}\n\n[True Answer]\n{a}\n\n[End of True Answer]\n\n[Prediction]\n{c}\n\n"
            f"[End of prediction]\n\n[System]\n{RULE}\n\n")


def parses(reply: str) -> bool:
    try:
        v = float(reply.split("\n")[0].strip())
    except ValueError:
        return False
    return 1 <= v <= 100


@torch.no_grad()
def main() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    path = dec.ensure_gguf()
    tok = AutoTokenizer.from_pretrained(str(dec.MODELS_DIR), gguf_file=dec.GGUF_NAME)
    model = AutoModelForCausalLM.from_pretrained(str(dec.MODELS_DIR), gguf_file=dec.GGUF_NAME, dtype=torch.float32,
                                                 attn_implementation=dec.ATTN).eval()
    cases = []
    for q, a, c in CASES:
        msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user_message(q, a, c)}]
        text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        ids = tok(text, add_special_tokens=False)["input_ids"]
        x = torch.tensor([ids])
        new, margins = [], []
        for _ in range(MAX_NEW):
            logits = model(input_ids=x, attention_mask=torch.ones_like(x)).logits[0, -1].float()
            top = torch.topk(logits, 2)
            margins.append(float(top.values[0] - top.values[1]))
            nxt = int(top.indices[0])
            new.append(nxt)
            x = torch.cat([x, torch.tensor([[nxt]])], dim=1)
        reply = tok.decode(new, skip_special_tokens=True)
        print(f"{q!r} / {a!r} / {c!r} -> {reply!r}", file=sys.stderr)
        cases.append({"question": q, "reference": a, "candidate": c, "system": SYSTEM,
                      "user": user_message(q, a, c), "templated": text, "input_ids": ids,
                      "greedy": {"new_ids": new, "text": reply, "top2_margins": margins},
                      "first_line_is_a_score": parses(reply)})
    out = {
        "format": 1,
        "note": "MedVLMBench GPT-score prompt, SmolLM2-135M-Instruct Q4_1 dequantised to float32 by transformers, "
                f"{MAX_NEW} greedy tokens by an argmax loop without a KV cache (no eos stop)",
        "gguf_sha256": dec.sha256(path), "versions": dec.versions(), "cases": cases,
    }
    dest = dec.OUT / "reference" / "smollm2-judge.json"
    dest.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {dest.relative_to(dec.ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
