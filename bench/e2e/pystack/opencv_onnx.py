"""Makes a copy of an ONNX model that OpenCV 4.6's DNN importer can read.

visiond's converter writes opset 13, where Clip takes min/max and Squeeze takes
its axes as inputs. OpenCV 4.6 (Debian 12's python3-opencv) only parses the
older attribute forms (onnx_importer.cpp: parseClip and parseSqueeze insist on
one input). This rewrites exactly those nodes, turning constant min/max/axes
inputs into the attributes with the same values; every weight and every other
node stays as it is, so the network computes the same function (checked by
bench/e2e/race.py --check against visiond's own embeddings).

    /usr/bin/python3 opencv_onnx.py IN.onnx OUT.onnx
"""
import sys

import onnx
from onnx import helper, numpy_helper


def rewrite(src, dst):
    m = onnx.load(src)
    consts = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    consts[n.output[0]] = numpy_helper.to_array(a.t)
    changed = 0
    for n in m.graph.node:
        if n.op_type == "Clip" and len(n.input) > 1:
            names = list(n.input[1:])
            attrs = []
            for key, name in zip(("min", "max"), names):
                if name == "":
                    continue
                if name not in consts:
                    raise SystemExit("Clip %s: %s is not a constant" % (n.name, key))
                attrs.append(helper.make_attribute(key, float(consts[name])))
            del n.input[1:]
            n.attribute.extend(attrs)
            changed += 1
        elif n.op_type in ("Squeeze", "Unsqueeze") and len(n.input) == 2:
            name = n.input[1]
            if name not in consts:
                raise SystemExit("%s %s: axes are not a constant" % (n.op_type, n.name))
            axes = [int(a) for a in consts[name].ravel()]
            del n.input[1:]
            n.attribute.extend([helper.make_attribute("axes", axes)])
            changed += 1
    onnx.save(m, dst)
    return changed


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: opencv_onnx.py IN.onnx OUT.onnx")
    print("opencv_onnx: rewrote %d nodes -> %s" % (rewrite(sys.argv[1], sys.argv[2]), sys.argv[2]))
