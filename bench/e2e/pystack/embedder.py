"""The original stack's image embedding: OpenCV DNN on visiond's mobilenet_v2.

Preprocessing has visiond's semantics (docs/images.md, the model's metadata
file): decode to 8-bit colour (grey replicated to 3 channels), RGB order,
stretch to the input size without rounding back to bytes (box filter when
shrinking, bilinear when enlarging: OpenCV's INTER_AREA / INTER_LINEAR), then
(pixel * scale - mean) / std, NHWC; the output is L2-normalised when the
metadata says so.
"""
import json

import cv2
import numpy as np


class Embedder:
    def __init__(self, onnx_path, meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        inp = meta["input"]
        if inp.get("layout", "NHWC") != "NHWC" or inp.get("resize", "stretch") != "stretch":
            raise ValueError("only NHWC models with resize=stretch are supported")
        self.name = meta["name"]
        self.h, self.w = int(inp["height"]), int(inp["width"])
        self.rgb = inp.get("color", "RGB") == "RGB"
        self.scale = float(inp.get("scale", 1.0))
        self.mean = np.array(inp.get("mean", [0, 0, 0]), np.float32)
        self.std = np.array(inp.get("std", [1, 1, 1]), np.float32)
        self.dim = int(meta["dim"])
        self.l2 = bool(meta.get("l2_normalize", False))
        self.net = cv2.dnn.readNetFromONNX(onnx_path)

    def preprocess(self, path):
        """One file to a [H, W, 3] float32 array; ValueError for what is not an image."""
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError("not an image or unreadable")
        if self.rgb:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        img = img.astype(np.float32)
        sh, sw = img.shape[:2]
        shrink = sw > self.w and sh > self.h
        img = cv2.resize(img, (self.w, self.h),
                         interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return (img * self.scale - self.mean) / self.std

    def embed(self, tensors):
        """A list of preprocessed images to an [n, dim] float32 array."""
        self.net.setInput(np.ascontiguousarray(np.stack(tensors)))
        out = self.net.forward().reshape(len(tensors), -1).astype(np.float32)
        if out.shape[1] != self.dim:
            raise ValueError("model answered %d values per image, expected %d" % (out.shape[1], self.dim))
        if self.l2:
            n = np.linalg.norm(out, axis=1, keepdims=True)
            out = out / np.where(n > 0, n, 1)
        return out
