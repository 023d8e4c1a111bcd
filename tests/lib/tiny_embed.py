#!/usr/bin/python3
"""tiny_embed.py: tiny CLIP-style image towers for the embedding tests (issue 19).

  tiny_embed.py models DIR     writes NAME.onnx + NAME.json into DIR (python3-onnx):
      clip_fixed     input image [1,3,224,224], output embedding [1,32]; no "dim"
      clip_dyn       input image [N,3,224,224], output embedding [N,32]; no "dim"
      clip_open      the same graph, its output declared [N,D]: the dim is known only
                     when it runs; no "dim"
      clip_wrongdim  clip_dyn's graph with "dim": 64 in its metadata
      clip_rank4     output embedding [N,32,1,1] (not [batch, dim]); no "dim"
  tiny_embed.py images DIR N   writes N 224x224 RGB PNGs (python3-opencv) into DIR
  tiny_embed.py ref FILE...    prints {"FILE": [32 floats], ...}: numpy's computation of the
                               same graph on each PNG (NCHW, CLIP mean/std, L2-normalised)

The graph: AveragePool 56x56 (stride 56) -> [N,3,4,4] -> Reshape [N,48] -> MatMul W[48,32].
W is fixed (a seeded generator), so numpy and the model server must agree to float precision.
The metadata is what a user writes for a CLIP visual tower (docs/models.md).
"""
import json
import os
import sys

import numpy as np

MEAN = [0.48145466, 0.4578275, 0.40821073]
STD = [0.26862954, 0.26130258, 0.27577711]
SCALE = 1.0 / 255.0


def weights():
    return np.random.default_rng(19).standard_normal((48, 32)).astype(np.float32)


def build(path, batch, out_shape, reshape_out=None):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("AveragePool", ["image"], ["pooled"], kernel_shape=[56, 56], strides=[56, 56]),
        helper.make_node("Reshape", ["pooled", "flat_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "W"], ["proj" if reshape_out else "embedding"]),
    ]
    inits = [
        numpy_helper.from_array(np.array([-1, 48], dtype=np.int64), "flat_shape"),
        numpy_helper.from_array(weights(), "W"),
    ]
    if reshape_out:
        nodes.append(helper.make_node("Reshape", ["proj", "out_shape"], ["embedding"]))
        inits.append(numpy_helper.from_array(np.array(reshape_out, dtype=np.int64), "out_shape"))
    graph = helper.make_graph(
        nodes,
        "tiny_clip",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 3, 224, 224])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, out_shape)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def meta(name, dim=None):
    m = {
        "name": name,
        "task": "image_embedding",
        "input": {"name": "image", "layout": "NCHW", "height": 224, "width": 224, "channels": 3,
                  "color": "RGB", "resize": "stretch", "scale": SCALE, "mean": MEAN, "std": STD},
        "outputs": ["embedding"],
        "l2_normalize": True,
        "max_batch": 4,
        "description": "a tiny CLIP-style tower (tests/lib/tiny_embed.py)",
    }
    if dim is not None:
        m["dim"] = dim
    return m


def models(d):
    os.makedirs(d, exist_ok=True)
    specs = {
        "clip_fixed": (1, [1, 32], None, None),
        "clip_dyn": ("N", ["N", 32], None, None),
        "clip_open": ("N", ["N", "D"], None, None),
        "clip_wrongdim": ("N", ["N", 32], None, 64),
        "clip_rank4": ("N", ["N", 32, 1, 1], [-1, 32, 1, 1], None),
    }
    for name, (batch, out, reshape_out, dim) in specs.items():
        build(os.path.join(d, name + ".onnx"), batch, out, reshape_out)
        with open(os.path.join(d, name + ".json"), "w") as f:
            json.dump(meta(name, dim), f, indent=1)


def images(d, n):
    import cv2

    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:224, 0:224]
    for i in range(n):
        a, b, c = rng.uniform(0.01, 0.08, 3)
        rgb = np.stack([(np.sin(xx * a + i) + 1) * 127, (np.cos(yy * b - i) + 1) * 127,
                        ((xx + yy) * c * 10 + i * 40) % 256], axis=-1)
        rgb = np.clip(rgb + rng.integers(0, 30, rgb.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(os.path.join(d, "img%02d.png" % i), rgb[:, :, ::-1])  # cv2 writes BGR


def ref(files):
    import cv2

    w = weights()
    out = {}
    for f in files:
        rgb = cv2.imread(f, cv2.IMREAD_COLOR)[:, :, ::-1].astype(np.float32)
        x = (rgb * np.float32(SCALE) - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
        x = x.transpose(2, 0, 1)  # CHW
        pooled = x.reshape(3, 4, 56, 4, 56).mean(axis=(2, 4))  # [3,4,4]
        v = pooled.reshape(48).astype(np.float64) @ w.astype(np.float64)
        v /= np.linalg.norm(v)
        out[f] = [float(t) for t in v]
    print(json.dumps(out))


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "models":
        models(sys.argv[2])
    elif cmd == "images":
        images(sys.argv[2], int(sys.argv[3]))
    elif cmd == "ref":
        ref(sys.argv[2:])
    else:
        sys.exit(__doc__)
