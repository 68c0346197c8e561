#!/usr/bin/env python3
"""Runs ../shared/bench/torch_baseline.py with one more shape, `mid` (the shape of
`valex bench --shape mid`: a Llama of hidden 512, FFN 1536, 4 layers, 8 heads, 4 kv heads,
vocabulary 8192), which fits two CPU cores. Same arguments as torch_baseline.py.

    python3 scripts/gpu/torch_shapes.py --baseline ../shared/bench/torch_baseline.py \\
        --device cpu --models tiny,mid --batch 4 --seq 128 --iters 3 --json out.json
"""
import importlib.util
import sys

args = sys.argv[1:]
path = "../shared/bench/torch_baseline.py"
if "--baseline" in args:
    i = args.index("--baseline")
    path = args[i + 1]
    del args[i:i + 2]
spec = importlib.util.spec_from_file_location("torch_baseline", path)
tb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tb)
tb.CONFIGS["mid"] = lambda: tb.LlamaConfig(
    hidden_size=512, intermediate_size=1536, num_hidden_layers=4, num_attention_heads=8,
    num_key_value_heads=4, vocab_size=8192, max_position_embeddings=512, rope_theta=1e6)
sys.argv = [path] + args
sys.exit(tb.main())
