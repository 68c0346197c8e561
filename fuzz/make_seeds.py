#!/usr/bin/env python3
"""Writes the generated seeds of the fuzz corpora (issue 10) into fuzz/corpus/<target>/.

Called by scripts/fuzz.sh; the output is git-ignored. Only the project's own files and
inputs made here are used; ../shared data is copied at run time, never committed.
Usage: make_seeds.py REPO_ROOT CORPUS_ROOT
"""
import glob
import json
import os
import struct
import sys
import zipfile

root, out = sys.argv[1], sys.argv[2]


def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def read(path):
    with open(path, "rb") as f:
        return f.read()


# manifest: every experiment TOML, alone and with --set strings (NUL-separated).
for i, p in enumerate(sorted(glob.glob(f"{root}/experiments/**/*.toml", recursive=True))):
    text = read(p)
    put("manifest", f"exp{i}", text)
    put("manifest", f"exp{i}-set", text + b"\0experiment.seed=7\0record.batch_size=2")
    put("manifest", f"exp{i}-set2", text + b"\0experiment.name=\"x\"\0score.params.top_k=[1,2]")

# jsonl: the demo data, a few lines each, and the benchmark files' first lines.
demo = read(f"{root}/experiments/value-study/data/demo.jsonl").split(b"\n")
for i in range(0, min(len(demo), 40), 4):
    put("jsonl", f"demo{i}", b"\n".join(demo[i : i + 4]))
for p in sorted(glob.glob(f"{root}/experiments/value-study/data/benchmark/*.jsonl")):
    put("jsonl", "bench-" + os.path.basename(p), b"\n".join(read(p).split(b"\n")[:3]))

# model_config: every architecture's fixture config.json.
for p in sorted(glob.glob(f"{root}/tests/fixtures/**/config.json", recursive=True)):
    put("model_config", p.split("/")[-2], read(p))


# c_voice_xlsx: tiny workbooks written here (inline strings), plus the released files
# copied at run time when ../shared has them.
def xlsx(sheets):
    import io

    buf = io.BytesIO()
    z = zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED)
    z.writestr(
        "[Content_Types].xml",
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        + "".join(
            f'<Override PartName="/xl/worksheets/sheet{i+1}.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            for i in range(len(sheets))
        )
        + "</Types>",
    )
    z.writestr(
        "_rels/.rels",
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
    )
    z.writestr(
        "xl/workbook.xml",
        '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>'
        + "".join(f'<sheet name="{n}" sheetId="{i+1}" r:id="rId{i+1}"/>' for i, (n, _) in enumerate(sheets))
        + "</sheets></workbook>",
    )
    z.writestr(
        "xl/_rels/workbook.xml.rels",
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        + "".join(
            f'<Relationship Id="rId{i+1}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet{i+1}.xml"/>'
            for i in range(len(sheets))
        )
        + "</Relationships>",
    )
    for i, (_, rows) in enumerate(sheets):
        cells = ""
        for r, row in enumerate(rows):
            cs = "".join(
                f'<c r="{chr(65+c)}{r+1}" t="inlineStr"><is><t>{v}</t></is></c>' for c, v in enumerate(row) if v
            )
            cells += f'<row r="{r+1}">{cs}</row>'
        z.writestr(
            f"xl/worksheets/sheet{i+1}.xml",
            '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            f"<sheetData>{cells}</sheetData></worksheet>",
        )
    z.close()
    return buf.getvalue()


act = [["冲突类型", "决策困境", "选择A", "选择B"], ["富强 vs 自由", "困境", "A. 甲", "B. 乙"], ["富强 vs 平等", "x", "A.", "C. y"]]
ev = [["Type", "Context", "Action1", "Action2"], ["富强 vs 自由", "我", "做", "不做"], ["民主 vs 自由", "", "a", "b"]]
put("c_voice_xlsx", "activation.xlsx", xlsx([("Sheet1", act)]))
put("c_voice_xlsx", "evaluation.xlsx", xlsx([("富强", ev)]))
put("c_voice_xlsx", "both.xlsx", xlsx([("富强", ev), ("民主", act)]))
for i, p in enumerate(sorted(glob.glob(f"{root}/../shared/datasets/c-voice/*.xlsx"))[:3]):
    put("c_voice_xlsx", f"shared-{i}.xlsx", read(p))


# stats_file: a small statistics file (sidecar JSON, NUL, safetensors) in the layout of
# valex-stats version 1, and variants (item means, wrong dtype).
def safetensors(tensors, meta=None):
    header, data = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if meta:
        header["__metadata__"] = meta
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def stats_seed(labels, n_layers, n_neurons, item_means=False, dtype="F64"):
    side = {
        "format": "valex-stats",
        "version": 1,
        "tap": "mlp.gate_act",
        "n_layers": n_layers,
        "n_neurons": n_neurons,
        "labels": [{"name": l, "tokens": 5.0, "items": 2} for l in labels],
        "item_level": True,
        "item_means": item_means,
    }
    n = n_layers * n_neurons
    t = {}
    for l in labels:
        for k in ["active", "item_sum", "item_sum_sq", "sum", "sum_sq"]:
            t[f"{l}/{k}"] = (dtype, [n_layers, n_neurons], struct.pack(f"<{n}d", *[float(i) for i in range(n)]))
        if item_means:
            t[f"{l}/item_keys"] = ("U64", [2], struct.pack("<2Q", 3, 9))
            t[f"{l}/item_means"] = ("F32", [2, n_layers, n_neurons], struct.pack(f"<{2*n}f", *[0.5] * (2 * n)))
    return json.dumps(side).encode() + b"\0" + safetensors(t)


put("stats_file", "small", stats_seed(["富强", "民主"], 2, 3))
put("stats_file", "means", stats_seed(["a"], 1, 2, item_means=True))
put("stats_file", "one", stats_seed(["a"], 1, 1))
# A real run's statistics when VALEX_FUZZ_RUN names a run folder (e.g. of the demo).
for p in glob.glob(os.path.join(os.environ.get("VALEX_FUZZ_RUN", "/nonexistent"), "statistics.json")):
    put("stats_file", "demo", read(p) + b"\0" + read(p[:-4] + "safetensors"))

# neuron_sets: valex's own format and LAPE's JSON masks.
put("neuron_sets", "sets", json.dumps({"neurons": {"富强": [[], [1, 2]], "民主": [[0], [2, 1, 1]]}, "provenance": {"x": 1}}))
put("neuron_sets", "empty", json.dumps({"neurons": {}}))
put("neuron_sets", "lape-list", json.dumps([[[1, 2], [3]], [[0], []]]))
put("neuron_sets", "lape-named", json.dumps({"labels": ["a", "b"], "masks": [[[1], []], [[], [2]]]}))
# LAPE masks as valex exports them (safetensors, I64 mask/<k>/<layer>).
put(
    "neuron_sets",
    "lape-st",
    safetensors(
        {"mask/0/0": ("I64", [2], struct.pack("<2q", 1, 4)), "mask/0/1": ("I64", [0], b""), "mask/1/0": ("I64", [1], struct.pack("<q", 2)), "mask/1/1": ("I64", [1], struct.pack("<q", 0))},
        {"format": "valex-lape-mask", "labels": json.dumps(["a", "b"]), "n_layers": "2"},
    ),
)

# plugin_reply: each reply kind, well-formed, as the example plugin sends them.
replies = {
    "describe": {"name": "p", "version": "0.1.0", "components": [{"id": "scorer/max-smd", "kind": "scorer", "version": "0.1.0", "summary": "s"}]},
    "error": {"code": "scorer.bad_params", "message": "m", "help": "h"},
    "score": {"sets": [{"label": "a", "layers": [[0, 1], [3]]}, {"label": "b", "layers": [[], [2]]}], "scores": [{"label": "a", "values": [0.1] * 8}], "details": {"k": 1}},
    "edit": {"tap": "mlp.act", "layers": [[[0, 0.0], [3, 2.5]], []]},
    "report": {"files": [{"name": "a/b.txt", "text": "hi"}]},
}
for k, v in replies.items():
    put("plugin_reply", k, json.dumps(v))
