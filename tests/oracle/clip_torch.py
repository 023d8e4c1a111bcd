#!/usr/bin/python3
"""clip_torch.py: torch-built CLIP towers with random weights, exported as Immich exports them.

  clip_torch.py build DIR [NAME]

Builds a tiny but architecture-faithful OpenCLIP model (a ViT image tower: patch embedding,
class token, positional embedding, pre-LN transformer, ln_post on the class token, projection;
a causal text transformer: token + positional embedding, causal mask, ln_final, pooling at the
end token = argmax of the ids, projection; both outputs L2-normalised, as Immich's exporter's
encode_image/encode_text(normalize=True)), exports each tower with torch.onnx.export under
Immich's names, shapes and dtypes ("image" float32 [1,3,S,S] and "text" int32 [1,77] ->
"embedding", batch fixed at 1), and writes Immich's folder layout:

  DIR/NAME/config.json                      embed_dim, vision_cfg.image_size, text_cfg.context_length
  DIR/NAME/visual/model.onnx, preprocess_cfg.json
  DIR/NAME/textual/model.onnx, tokenizer.json, tokenizer_config.json (pad_token)
  DIR/NAME64/textual/...                    the same text tower taking int64 ids, dynamic batch

The tokenizer is the one tests/oracle/clip_bpe_ref.py learns; the ids fed to torch come from
that independent Python reference. Also writes DIR/images/*.png (generated pictures whose size
is the model's, or twice it: visiond's preprocessing is then exact arithmetic) and DIR/ref.json:
torch's vectors for each image and text, and zero-shot scores (softmax of 100 x cosine).
"""
import json
import math
import os
import random
import shutil
import struct
import sys
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_bpe_ref as ref  # noqa: E402

SIZE, PATCH, WIDTH, HEADS, LAYERS, EMBED, CONTEXT = 32, 8, 32, 2, 2, 16, 77
# CLIP_TORCH_TEXT=b32: the text tower in the size of OpenAI's ViT-B/32 (bench/text)
TWIDTH, THEADS, TLAYERS = (512, 8, 12) if os.environ.get("CLIP_TORCH_TEXT") == "b32" else (WIDTH, HEADS, LAYERS)
# not OpenAI CLIP's (visiond's default when preprocess_cfg.json has none): a reader that
# ignored the file would fail the parity test
MEAN = [0.5, 0.45, 0.4]
STD = [0.22, 0.25, 0.3]
TEXTS = ["a photo of a dog", "a photo of a cat", "A PHOTO OF THE BEACH at night!", "",
         "don't stop", "café naïve 東京 😀", " ".join(["word"] * 100)]
LABELS = ["dog", "cat", "beach"]


class Block(nn.Module):
    """A pre-LN residual attention block (open_clip's ResidualAttentionBlock), attention written out."""

    def __init__(self, width=WIDTH, heads=HEADS):
        super().__init__()
        self.width, self.heads = width, heads
        self.ln_1, self.ln_2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.out = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.fc, self.proj = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

    def attn(self, x, mask):
        n, t, w = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        a = q @ k.transpose(-1, -2) / math.sqrt(w // self.heads)
        if mask is not None:
            a = a + mask
        y = a.softmax(-1) @ v
        return self.out(y.transpose(1, 2).reshape(n, t, w))

    def forward(self, x, mask=None):
        x = x + self.attn(self.ln_1(x), mask)
        h = self.fc(self.ln_2(x))
        return x + self.proj(h * torch.sigmoid(1.702 * h))  # QuickGELU, as OpenAI's CLIP


class Visual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, WIDTH, PATCH, PATCH, bias=False)
        self.cls = nn.Parameter(torch.randn(WIDTH) * 0.5)
        self.pos = nn.Parameter(torch.randn((SIZE // PATCH) ** 2 + 1, WIDTH) * 0.5)
        self.ln_pre, self.ln_post = nn.LayerNorm(WIDTH), nn.LayerNorm(WIDTH)
        self.blocks = nn.ModuleList([Block() for _ in range(LAYERS)])
        self.projection = nn.Parameter(torch.randn(WIDTH, EMBED) / math.sqrt(WIDTH))

    def forward(self, image):
        x = self.conv1(image).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], 1, WIDTH), x], 1) + self.pos
        x = self.ln_pre(x)
        for b in self.blocks:
            x = b(x)
        x = self.ln_post(x[:, 0]) @ self.projection
        return F.normalize(x, dim=-1)


class Textual(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.token = nn.Embedding(vocab, TWIDTH)
        self.pos = nn.Parameter(torch.randn(CONTEXT, TWIDTH) * 0.1)
        self.blocks = nn.ModuleList([Block(TWIDTH, THEADS) for _ in range(TLAYERS)])
        self.ln_final = nn.LayerNorm(TWIDTH)
        self.projection = nn.Parameter(torch.randn(TWIDTH, EMBED) / math.sqrt(TWIDTH))
        self.register_buffer("mask", torch.full((CONTEXT, CONTEXT), float("-inf")).triu(1))

    def forward(self, text):
        x = self.token(text) + self.pos
        for b in self.blocks:
            x = b(x, self.mask)
        x = self.ln_final(x)
        x = x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.projection
        return F.normalize(x, dim=-1)


def write_png(path, rgb):
    h, w, _ = rgb.shape
    raw = b"".join(b"\0" + rgb[y].astype(np.uint8).tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def pictures(rng):
    """Generated pictures: gradients, a disc, noise; sizes SIZE and 2*SIZE."""
    out = {}
    for i, side in enumerate([SIZE, SIZE, 2 * SIZE]):
        y, x = np.mgrid[0:side, 0:side] / side
        img = np.stack([x * 255, y * 255, (1 - x) * 128 + 64], -1)
        img[(x - 0.3 - 0.2 * i) ** 2 + (y - 0.5) ** 2 < 0.05] = [200, 40 * i, 90]
        img += rng.integers(0, 40, img.shape)
        out[f"img{i}_{side}.png"] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def prep(rgb):
    """visiond's preprocessing for these sizes: a 2x2 box average when twice the size, then
    (x / 255 - mean) / std, NCHW."""
    x = torch.tensor(rgb, dtype=torch.float32).permute(2, 0, 1)[None]
    if x.shape[-1] == 2 * SIZE:
        x = F.avg_pool2d(x, 2)
    m, s = torch.tensor(MEAN)[:, None, None], torch.tensor(STD)[:, None, None]
    return (x / 255.0 - m) / s


def main():
    if len(sys.argv) < 3 or sys.argv[1] != "build":
        sys.exit(__doc__)
    out, name = sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "tinyclip"
    torch.manual_seed(5)
    root = os.path.join(out, name)
    for d in ("visual", "textual"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.makedirs(os.path.join(out, "images"), exist_ok=True)

    merges = ref.learn(ref.generate(random.Random(99), 1500), 400)
    tok = ref.tokenizer_json(merges)
    vocab, ranks = tok["model"]["vocab"], {m: i for i, m in enumerate(merges)}
    end = vocab[ref.SPECIALS[1]]
    with open(os.path.join(root, "textual", "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    with open(os.path.join(root, "textual", "tokenizer_config.json"), "w") as f:
        json.dump({"pad_token": ref.SPECIALS[1], "model_max_length": CONTEXT}, f)
    with open(os.path.join(root, "config.json"), "w") as f:
        json.dump({"embed_dim": EMBED, "vision_cfg": {"image_size": SIZE, "layers": LAYERS,
                   "width": WIDTH, "patch_size": PATCH},
                   "text_cfg": {"context_length": CONTEXT, "vocab_size": len(vocab),
                                "width": WIDTH, "heads": HEADS, "layers": LAYERS}}, f)
    with open(os.path.join(root, "visual", "preprocess_cfg.json"), "w") as f:
        json.dump({"size": [SIZE, SIZE], "mode": "RGB", "mean": MEAN, "std": STD,
                   "interpolation": "bicubic", "resize_mode": "shortest", "fill_color": 0}, f)

    visual, textual = Visual().eval(), Textual(len(vocab)).eval()
    with torch.no_grad():
        torch.onnx.export(visual, (torch.randn(1, 3, SIZE, SIZE),),
                          os.path.join(root, "visual", "model.onnx"), input_names=["image"],
                          output_names=["embedding"], opset_version=14)
        torch.onnx.export(textual, (torch.ones(1, CONTEXT, dtype=torch.int32),),
                          os.path.join(root, "textual", "model.onnx"), input_names=["text"],
                          output_names=["embedding"], opset_version=14)
        # the same text tower taking int64 ids and a dynamic batch (Hugging Face-style exports)
        t64 = os.path.join(out, name + "64", "textual")
        os.makedirs(t64, exist_ok=True)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(root, "textual", f), t64)
        shutil.copy(os.path.join(root, "config.json"), os.path.dirname(t64))
        torch.onnx.export(textual, (torch.ones(1, CONTEXT, dtype=torch.int64),),
                          os.path.join(t64, "model.onnx"), input_names=["text"],
                          output_names=["embedding"], opset_version=14,
                          dynamic_axes={"text": {0: "batch"}, "embedding": {0: "batch"}})

        refs = {"images": {}, "texts": {}, "truncated": {}, "zero_shot": {}}
        for fname, rgb in pictures(np.random.default_rng(3)).items():
            write_png(os.path.join(out, "images", fname), rgb)
            refs["images"][fname] = visual(prep(rgb))[0].tolist()
        prompts = [f"a photo of a {label}" for label in LABELS]
        for t in TEXTS + prompts:
            ids = ref.encode(t, vocab, ranks, CONTEXT, pad=end)
            refs["texts"][t] = textual(torch.tensor([ids], dtype=torch.int32))[0].tolist()
            full = ref.encode(t, vocab, ranks, 10 ** 4, pad=-1)
            refs["truncated"][t] = sum(1 for i in full if i != -1) > CONTEXT
        tv = torch.tensor([refs["texts"][p] for p in prompts])
        for fname, v in refs["images"].items():
            scores = (100.0 * torch.tensor(v) @ tv.T).softmax(-1)
            refs["zero_shot"][fname] = dict(zip(LABELS, scores.tolist()))
    with open(os.path.join(out, "ref.json"), "w", encoding="utf-8") as f:
        json.dump(refs, f, ensure_ascii=False)
    print(f"clip_torch: {name}: vocab {len(vocab)}, {len(refs['images'])} images, "
          f"{len(refs['texts'])} texts")


if __name__ == "__main__":
    main()
