"""Cross-check the demo model with HF transformers' LlamaForCausalLM (PyTorch, f32, CPU).

Usage:
  VALEX_DEMO_DUMP_DIR=/tmp/d cargo test -p valex-demo-model dump_reference -- --ignored
  python3 plugins/demo-model/tools/hf_check.py /tmp/d [out.json]

Compares with the crate's Rust reference forward: tokenization (tokenizers' Python binding),
per-item option log-likelihood differences with and without the value's planted neurons
zeroed (pre-hook on mlp.down_proj), and per-value firing rates of act(gate) > 0 on story
tokens; prints the aligned-choice rates HF gives.
"""
import json
import sys

import torch
from tokenizers import Tokenizer
from transformers import LlamaForCausalLM

d = sys.argv[1]
ref = json.load(open(f"{d}/reference.json"))
tok = Tokenizer.from_file(f"{d}/model/tokenizer.json")
model = LlamaForCausalLM.from_pretrained(f"{d}/model", dtype=torch.float32, attn_implementation="eager").eval()
layers = model.model.layers
ablate, gate_out = {}, {}


def pre_hook(layer):
    def f(_mod, args):
        if ablate.get(layer):
            x = args[0].clone()
            x[..., ablate[layer]] = 0.0
            return (x,)
        return None
    return f


def gate_hook(layer):
    def f(_mod, _inp, out):
        gate_out[layer] = out.detach()
    return f


for i, blk in enumerate(layers):
    blk.mlp.down_proj.register_forward_pre_hook(pre_hook(i))
    blk.mlp.gate_proj.register_forward_hook(gate_hook(i))


def run(ids):
    with torch.no_grad():
        return torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)


def score(ctx, cont, mask):
    ablate.clear()
    ablate.update(mask)
    lp = run(ctx + cont)
    return sum(lp[len(ctx) + i - 1, t].item() for i, t in enumerate(cont))


report = {"transformers_model": type(model).__name__}
bad_tok = 0
for e in ref["eval"]:
    story, al, vi = e["texts"]
    for text, ids, special in ((story, e["ctx"], True), (al, e["aligned"], False), (vi, e["violating"], False)):
        bad_tok += tok.encode(text, add_special_tokens=special).ids != ids
for a in ref["activation"]:
    bad_tok += tok.encode(a["text"]).ids != a["ids"]
report["tokenization_mismatches"] = bad_tok

err_base = err_off = 0.0
wins = {"base": 0, "planted_off": 0}
for e in ref["eval"]:
    mask = {}
    for layer, n in ref["planted"][e["value"]]:
        mask.setdefault(layer, []).append(n)
    base = score(e["ctx"], e["aligned"], {}) - score(e["ctx"], e["violating"], {})
    off = score(e["ctx"], e["aligned"], mask) - score(e["ctx"], e["violating"], mask)
    err_base = max(err_base, abs(base - e["base"]))
    err_off = max(err_off, abs(off - e["planted_off"]))
    wins["base"] += base > 0
    wins["planted_off"] += off > 0
n = len(ref["eval"])
report.update(aligned_rate_base=wins["base"] / n, aligned_rate_planted_off=wins["planted_off"] / n,
              max_abs_err_base_nats=err_base, max_abs_err_planted_off_nats=err_off)

n_val, n_layers = len(ref["p"]), len(layers)
inter = model.config.intermediate_size
active = torch.zeros(n_val, n_layers, inter, dtype=torch.float64)
tokens = torch.zeros(n_val, dtype=torch.float64)
ablate.clear()
for a in ref["activation"]:
    run(a["ids"])
    for layer in range(n_layers):
        act = torch.nn.functional.silu(gate_out[layer][0, 1:a["story_end"]])
        active[a["value"], layer] += (act > 0).double().sum(0)
    tokens[a["value"]] += a["story_end"] - 1
p = active / tokens[:, None, None]
p_ref = torch.tensor(ref["p"], dtype=torch.float64)
report["max_abs_diff_firing_rate"] = (p - p_ref).abs().max().item()
own = [min(p[v, l, nn].item() for l, nn in ref["planted"][v]) for v in range(n_val)]
other = max(p[u, l, nn].item() for v in range(n_val) for l, nn in ref["planted"][v] for u in range(n_val) if u != v)
report.update(planted_min_own_rate=min(own), planted_max_other_rate=other)
print(json.dumps(report, indent=1))
if len(sys.argv) > 2:
    json.dump(report, open(sys.argv[2], "w"), indent=1)
