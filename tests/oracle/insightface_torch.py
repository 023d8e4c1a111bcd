#!/usr/bin/python3
"""insightface_torch.py: architecture-faithful InsightFace models built with torch, and the
references visiond's face pipeline is checked against (tests/integration/insightface_parity.sh).

No real weights can be downloaded here, so the models have random weights, exported with
torch.onnx.export under the interface of the public buffalo_l files as Immich ships them
(NAME/detection/model.onnx, NAME/recognition/model.onnx):

  detection (det_10g.onnx, SCRFD-10GF with keypoints): input "input.1" float32 [1, 3, H, W]
    (H and W left open), nine outputs in InsightFace's order: scores for strides 8, 16, 32
    ("448", "471", "494": [N, 1]), box distances ("451", "474", "497": [N, 4]), keypoint
    offsets ("454", "477", "500": [N, 10]), N = (H/s) * (W/s) * 2 (two anchors per location,
    the batch folded into N as in the public export).
  recognition (w600k_r50.onnx, ArcFace ResNet): input "input.1" float32 [B, 3, 112, 112],
    output "683" [B, 512] (not normalised).

The detector's weights are random except that its score logits also see the input's blue
channel averaged over each anchor's cell, so that it fires where the test image has bright
blue squares and nowhere else (scores well away from any threshold), and its box distances
are kept in 2..4 strides and keypoints within a quarter stride of a face's layout (eyes two
strides apart), so boxes and crops are sensible.

Sub-commands (all paths are files; JSON on stdout where noted):
  build DIR             writes DIR/buffalo_l/{detection,recognition}/model.onnx and the
                        torch weights DIR/insightface_torch.pt
  image OUT.png         the 640x640 test picture (smooth red/green ramps, blue squares)
  detect WEIGHTS IMG THRESHOLD
                        torch's outputs on IMG (RGB, (x - 127.5) / 128, no resize: IMG must
                        have the input's size) decoded as InsightFace's SCRFD.detect does
                        (anchors at (x*s, y*s), distance2bbox / distance2kps, score >=
                        threshold, order by score, NMS at IoU 0.4 with +1 pixel areas):
                        {"boxes": [[x1,y1,x2,y2,score]...], "kps": [[[x,y] x5]...]} on stdout
  embed WEIGHTS CROP.ppm...
                        torch's embeddings of 112x112 crops ((x - 127.5) / 127.5, RGB,
                        NCHW), L2-normalised: a JSON list of vectors on stdout
  align IMG LMS.json PREFIX
                        the reference ArcFace crops, PREFIXk.ppm for face k of LMS.json (a
                        list of five [x, y] landmarks per face, pixel-index coordinates):
                        numpy Umeyama (similarity, no reflection) onto arcface_dst, then a
                        bilinear warp as cv2.warpAffine does (black outside); prints the
                        2x3 matrices as JSON
  topng IN.ppm OUT.png  re-encodes a PPM as PNG
"""
import json
import struct
import sys
import zlib

import numpy as np
import torch
from torch import nn

STRIDES = (8, 16, 32)
ANCHORS = 2
ARCFACE_DST = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)
DET_OUTPUTS = ["448", "471", "494", "451", "474", "497", "454", "477", "500"]
REC_OUTPUT = "683"


# ---------------------------------------------------------------- models

def conv_bn(cin, cout, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class SCRFD(nn.Module):
    """A small SCRFD: strided conv backbone, an FPN-like level per stride, per level a score
    head (2 anchors), a box head (2 x 4) and a keypoint head (2 x 10), outputs flattened to
    [N, C] with N ordered (y, x, anchor) as InsightFace's decoder reads them."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 8, 2), conv_bn(8, 16, 2), conv_bn(16, 16, 2))
        self.down16 = conv_bn(16, 16, 2)
        self.down32 = conv_bn(16, 16, 2)
        self.cls = nn.ModuleList(nn.Conv2d(16, ANCHORS, 3, 1, 1) for _ in STRIDES)
        self.box = nn.ModuleList(nn.Conv2d(16, ANCHORS * 4, 3, 1, 1) for _ in STRIDES)
        self.kps = nn.ModuleList(nn.Conv2d(16, ANCHORS * 10, 3, 1, 1) for _ in STRIDES)
        # a face's five landmarks around the anchor, in strides (eyes, nose, mouth corners)
        face = torch.tensor([-1.0, -0.8, 1.0, -0.8, 0.0, 0.2, -0.8, 1.2, 0.8, 1.2])
        self.register_buffer("face", face.repeat(ANCHORS).view(1, ANCHORS * 10, 1, 1))

    @staticmethod
    def flat(t, c):
        return t.permute(0, 2, 3, 1).reshape(-1, c)

    def forward(self, x):
        f8 = self.stem(x)
        f16 = self.down16(f8)
        f32 = self.down32(f16)
        blue = x[:, 2:3]  # (B - 127.5) / 128: about -1 (dark) .. +1 (bright)
        scores, boxes, kpss = [], [], []
        for i, (s, f) in enumerate(zip(STRIDES, (f8, f16, f32))):
            cell = nn.functional.avg_pool2d(blue, s, s)  # the anchor's cell
            logit = 2.0 * torch.tanh(4.0 * self.cls[i](f)) + 3.0 * cell
            scores.append(self.flat(torch.sigmoid(logit), 1))
            boxes.append(self.flat(3.0 + torch.tanh(self.box[i](f)), 4))
            kpss.append(self.flat(self.face + 0.25 * torch.tanh(self.kps[i](f)), 10))
        return tuple(scores + boxes + kpss)


class Block(nn.Module):
    """An IResNet basic block (BN, conv, BN, PReLU, conv, BN + shortcut)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(cout), nn.PReLU(cout),
                                  nn.Conv2d(cout, cout, 3, stride, 1, bias=False),
                                  nn.BatchNorm2d(cout))
        self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return self.body(x) + self.short(x)


class ArcFace(nn.Module):
    """A small IResNet-style ArcFace: 112x112 in, four stride-2 stages, BN, dropout-free FC to
    512, BatchNorm1d (the "features" layer of insightface's iresnet)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16),
                                  nn.PReLU(16))
        self.stages = nn.Sequential(Block(16, 16, 2), Block(16, 24, 2), Block(24, 32, 2),
                                    Block(32, 32, 2))
        self.bn2 = nn.BatchNorm2d(32)
        self.fc = nn.Linear(32 * 7 * 7, 512)
        self.features = nn.BatchNorm1d(512)

    def forward(self, x):
        x = self.bn2(self.stages(self.stem(x)))
        return self.features(self.fc(torch.flatten(x, 1)))


def randomise_bn(m, gen):
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm2d, nn.BatchNorm1d)):
            n = mod.num_features
            mod.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            mod.running_var.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
            mod.weight.data.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
            mod.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)


def make_models():
    torch.manual_seed(15)
    gen = torch.Generator().manual_seed(4)
    det, rec = SCRFD().eval(), ArcFace().eval()
    with torch.no_grad():
        randomise_bn(det, gen)
        randomise_bn(rec, gen)
    return det, rec


def load_models(weights):
    det, rec = SCRFD().eval(), ArcFace().eval()
    state = torch.load(weights)
    det.load_state_dict(state["detection"])
    rec.load_state_dict(state["recognition"])
    return det, rec


def rename_outputs(path, names):
    """TorchScript refuses numeric value names: export as o_NAME, then rename in the graph."""
    import onnx
    m = onnx.load(path)
    for node in m.graph.node:
        node.output[:] = [names.get(o, o) for o in node.output]
        node.input[:] = [names.get(i, i) for i in node.input]
    for o in m.graph.output:
        o.name = names.get(o.name, o.name)
        if o.name in DET_OUTPUTS:  # [N, C] with C fixed, as in det_10g.onnx
            o.type.tensor_type.shape.dim[1].dim_value = (1, 4, 10)[DET_OUTPUTS.index(o.name) // 3]
    onnx.save(m, path)


def build(outdir):
    import os
    det, rec = make_models()
    for sub in ("detection", "recognition"):
        os.makedirs(f"{outdir}/buffalo_l/{sub}", exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(det, torch.zeros(1, 3, 640, 640), f"{outdir}/buffalo_l/detection/model.onnx",
                          input_names=["input.1"], output_names=["o_" + o for o in DET_OUTPUTS],
                          opset_version=11,
                          dynamic_axes={"input.1": {2: "height", 3: "width"},
                                        **{"o_" + o: {0: "anchors"} for o in DET_OUTPUTS}})
        torch.onnx.export(rec, torch.zeros(1, 3, 112, 112), f"{outdir}/buffalo_l/recognition/model.onnx",
                          input_names=["input.1"], output_names=["o_" + REC_OUTPUT], opset_version=11,
                          dynamic_axes={"input.1": {0: "None"}, "o_" + REC_OUTPUT: {0: "None"}})
    rename_outputs(f"{outdir}/buffalo_l/detection/model.onnx", {"o_" + o: o for o in DET_OUTPUTS})
    rename_outputs(f"{outdir}/buffalo_l/recognition/model.onnx", {"o_" + REC_OUTPUT: REC_OUTPUT})
    torch.save({"detection": det.state_dict(), "recognition": rec.state_dict()},
               f"{outdir}/insightface_torch.pt")


# ---------------------------------------------------------------- images

def write_png(path, rgb):
    h, w, _ = rgb.shape
    raw = b"".join(b"\0" + rgb[y].astype(np.uint8).tobytes() for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def read_png(path):
    """Reads an 8-bit RGB PNG without interlace (what write_png and visiond's tests write)."""
    data = open(path, "rb").read()
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, t = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if t == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype == 2 and interlace == 0, "want 8-bit RGB PNG"
        elif t == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * 3
    out = np.zeros((h, stride), np.int32)
    prev = np.zeros(stride, np.int32)
    for y in range(h):
        ft = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        cur = line.copy() if ft == 0 else np.zeros(stride, np.int32)
        for x in range(stride if ft else 0):
            a = cur[x - 3] if x >= 3 else 0
            b = prev[x]
            c = prev[x - 3] if x >= 3 else 0
            if ft == 0:
                p = 0
            elif ft == 1:
                p = a
            elif ft == 2:
                p = b
            elif ft == 3:
                p = (a + b) // 2
            else:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            cur[x] = (line[x] + p) & 255
        out[y] = cur
        prev = cur
    return out.reshape(h, w, 3).astype(np.uint8)


def read_ppm(path):
    data = open(path, "rb").read()
    parts, pos = [], 0
    while len(parts) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        start = pos
        while not data[pos:pos + 1].isspace():
            pos += 1
        parts.append(data[start:pos])
    assert parts[0] == b"P6" and parts[3] == b"255"
    w, h = int(parts[1]), int(parts[2])
    return np.frombuffer(data, np.uint8, w * h * 3, pos + 1).reshape(h, w, 3)


def write_ppm(path, rgb):
    h, w, _ = rgb.shape
    with open(path, "wb") as f:
        f.write(b"P6\n%d %d\n255\n" % (w, h) + rgb.astype(np.uint8).tobytes())


def test_image():
    """640 x 640: red and green ramps, blue 0, with bright blue squares (the "faces") aligned to
    the 32-pixel grid, so every anchor cell is all in or all out of a square."""
    y, x = np.mgrid[0:640, 0:640]
    img = np.zeros((640, 640, 3), np.uint8)
    img[..., 0] = (x * 255) // 639
    img[..., 1] = (y * 255) // 639
    for x0, y0, side in ((64, 64, 32), (320, 96, 32), (160, 352, 64), (448, 416, 32)):
        img[y0:y0 + side, x0:x0 + side, 2] = 255
    return img


# ---------------------------------------------------------------- references

def distance2bbox(points, d):
    return np.stack([points[:, 0] - d[:, 0], points[:, 1] - d[:, 1],
                     points[:, 0] + d[:, 2], points[:, 1] + d[:, 3]], axis=-1)


def distance2kps(points, d):
    out = []
    for i in range(0, d.shape[1], 2):
        out.append(points[:, 0] + d[:, i])
        out.append(points[:, 1] + d[:, i + 1])
    return np.stack(out, axis=-1)


def nms(dets, thresh=0.4):
    x1, y1, x2, y2, scores = dets[:, 0], dets[:, 1], dets[:, 2], dets[:, 3], dets[:, 4]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(i)
        xx1 = np.maximum(x1[i], x1[order[1:]])
        yy1 = np.maximum(y1[i], y1[order[1:]])
        xx2 = np.minimum(x2[i], x2[order[1:]])
        yy2 = np.minimum(y2[i], y2[order[1:]])
        inter = np.maximum(0.0, xx2 - xx1 + 1) * np.maximum(0.0, yy2 - yy1 + 1)
        ovr = inter / (areas[i] + areas[order[1:]] - inter)
        order = order[np.where(ovr <= thresh)[0] + 1]
    return keep


def detect(weights, image, threshold):
    det, _ = load_models(weights)
    img = read_png(image).astype(np.float32)
    h, w, _ = img.shape
    blob = torch.from_numpy(((img - 127.5) / 128.0).transpose(2, 0, 1)[None].copy())
    with torch.no_grad():
        outs = [o.numpy() for o in det(blob)]
    scores_l, boxes_l, kps_l = [], [], []
    for idx, s in enumerate(STRIDES):
        scores, bbox, kps = outs[idx], outs[idx + 3] * s, outs[idx + 6] * s
        centers = np.stack(np.mgrid[:h // s, :w // s][::-1], axis=-1).astype(np.float32)
        centers = np.stack([(centers * s).reshape(-1, 2)] * ANCHORS, axis=1).reshape(-1, 2)
        pos = np.where(scores >= threshold)[0]
        scores_l.append(scores[pos])
        boxes_l.append(distance2bbox(centers, bbox)[pos])
        kps_l.append(distance2kps(centers, kps).reshape(-1, 5, 2)[pos])
    scores = np.vstack(scores_l)
    order = scores.ravel().argsort()[::-1]
    pre = np.hstack((np.vstack(boxes_l), scores)).astype(np.float32)[order]
    keep = nms(pre)
    kps = np.vstack(kps_l)[order][keep]
    print(json.dumps({"boxes": pre[keep].tolist(), "kps": kps.tolist()}))


def embed(weights, crops):
    _, rec = load_models(weights)
    x = np.stack([read_ppm(c).astype(np.float32) for c in crops])
    x = torch.from_numpy(((x - 127.5) / 127.5).transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        v = rec(x).numpy().astype(np.float64)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    print(json.dumps(v.tolist()))


def umeyama(src, dst):
    """Least-squares similarity src -> dst (Umeyama 1991, no reflection), as a 2x3 matrix."""
    n = len(src)
    ms, md = src.mean(0), dst.mean(0)
    sc, dc = src - ms, dst - md
    cov = dc.T @ sc / n
    u, s, vt = np.linalg.svd(cov)
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    r = u @ d @ vt
    scale = np.trace(np.diag(s) @ d) / ((sc ** 2).sum() / n)
    t = md - scale * r @ ms
    return np.hstack([scale * r, t[:, None]])


def warp_affine(img, m, size):
    """cv2.warpAffine(img, m, (size, size)) with INTER_LINEAR and a black border: output pixel
    (u, v) samples the source at m^-1 (u, v), pixel-index coordinates."""
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
    v, u = np.mgrid[0:size, 0:size].astype(np.float64)
    sx = inv[0, 0] * u + inv[0, 1] * v + inv[0, 2]
    sy = inv[1, 0] * u + inv[1, 1] * v + inv[1, 2]
    h, w, _ = img.shape
    pad = np.zeros((h + 2, w + 2, 3), np.float64)
    pad[1:-1, 1:-1] = img
    x0, y0 = np.floor(sx), np.floor(sy)
    fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]

    def at(yy, xx):
        xx = np.clip(xx.astype(np.int64) + 1, 0, w + 1)
        yy = np.clip(yy.astype(np.int64) + 1, 0, h + 1)
        return pad[yy, xx]
    out = (at(y0, x0) * (1 - fx) * (1 - fy) + at(y0, x0 + 1) * fx * (1 - fy)
           + at(y0 + 1, x0) * (1 - fx) * fy + at(y0 + 1, x0 + 1) * fx * fy)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def align(image, lms_json, prefix):
    img = read_png(image).astype(np.float64)
    mats = []
    for k, lm5 in enumerate(json.load(open(lms_json))):
        m = umeyama(np.array(lm5, np.float64), ARCFACE_DST)
        write_ppm(f"{prefix}{k}.ppm", warp_affine(img, m, 112))
        mats.append(m.tolist())
    print(json.dumps(mats))


def main(argv):
    cmd = argv[1]
    if cmd == "build":
        build(argv[2])
    elif cmd == "image":
        write_png(argv[2], test_image())
    elif cmd == "detect":
        detect(argv[2], argv[3], float(argv[4]))
    elif cmd == "embed":
        embed(argv[2], argv[3:])
    elif cmd == "align":
        align(argv[2], argv[3], argv[4])
    elif cmd == "topng":
        write_png(argv[3], read_ppm(argv[2]))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
