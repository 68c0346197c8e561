"""Export a random-weight model of a public shape to ONNX for ort_bench (nothing downloaded).

Usage: python3 export_bench_model.py SHAPE DTYPE OUT_DIR    (SHAPE: tiny, mid, qwen2_0_5b,
qwen2_7b, llama3_8b, the shapes of `valex bench` and shared/bench/torch_baseline.py; DTYPE: f32,
f16). Writes OUT_DIR/{model.onnx, model.onnx.data, config.json, tokenizer.json}: the
TorchScript exporter (as optimum), opset 17, eager attention, no KV cache, dynamic batch and
seq, weights in one external data file, and a word-level tokenizer covering the vocabulary
(ort_bench feeds ids directly). Exports on CUDA when available.
"""
import json
import os
import sys
import tempfile

import onnx
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

SHAPES = {
    "tiny": lambda: LlamaConfig(hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                                num_attention_heads=4, num_key_value_heads=2, vocab_size=512),
    "mid": lambda: LlamaConfig(hidden_size=512, intermediate_size=1536, num_hidden_layers=4,
                               num_attention_heads=8, num_key_value_heads=4, vocab_size=8192),
    "qwen2_0_5b": lambda: Qwen2Config(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                                      num_attention_heads=14, num_key_value_heads=2, vocab_size=151936,
                                      rope_theta=1e6, tie_word_embeddings=True),
    "qwen2_7b": lambda: Qwen2Config(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                                    num_attention_heads=28, num_key_value_heads=4, vocab_size=152064,
                                    rope_theta=1e6, tie_word_embeddings=False),
    "llama3_8b": lambda: LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                     num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                                     rope_theta=5e5),
}


class Logits(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids, attention_mask):
        return self.m(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits


def main():
    shape, dtype, out = sys.argv[1], sys.argv[2], sys.argv[3]
    dt = {"f32": torch.float32, "f16": torch.float16}[dtype]
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    cfg = SHAPES[shape]()
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    with torch.device(dev):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dt, attn_implementation="eager").eval()
    os.makedirs(out, exist_ok=True)
    ids = torch.randint(0, cfg.vocab_size, (2, 8), device=dev)
    mask = torch.ones_like(ids)
    axes = {0: "batch", 1: "seq"}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        with torch.no_grad():
            torch.onnx.export(Logits(model), (ids, mask), path,
                              input_names=["input_ids", "attention_mask"], output_names=["logits"],
                              dynamic_axes={"input_ids": axes, "attention_mask": axes, "logits": axes},
                              opset_version=17, dynamo=False)
        m = onnx.load(path)
        onnx.save_model(m, os.path.join(out, "model.onnx"), save_as_external_data=True,
                        all_tensors_to_one_file=True, location="model.onnx.data", size_threshold=1024)
    cfg.to_json_file(os.path.join(out, "config.json"))
    vocab = {f"t{i}": i for i in range(cfg.vocab_size)}
    tok = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
           "normalizer": None, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": None,
           "decoder": None, "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "t0"}}
    with open(os.path.join(out, "tokenizer.json"), "w") as f:
        json.dump(tok, f)
    print(f"exported {shape} {dtype} on {dev} to {out}")


if __name__ == "__main__":
    main()
