#!/usr/bin/env node
// tfjs_oracle.js: the independent reference for `visiond convert`.
//
// Loads a TensorFlow.js graph model with TensorFlow.js itself (pure JavaScript,
// cpu backend), from memory (tf.io.fromMemory), runs it on a float32 input
// file and writes each requested node's output as little-endian float32.
//
//   node tfjs_oracle.js --model MODEL.json|model.min.js --input IN.f32 --shape N,H,W,C \
//        --output NODE --out OUT.f32 [--output NODE2 --out OUT2.f32 ...] [--time N]
//
// --time N: also runs the model N more times after the first and reports the
// mean wall time of one run in ms ("ms_per_run"), for bench/convert.
// Prints one JSON line: {"outputs":[{"node":..., "shape":[...], "file":...}]}.
// The packages come from $VISIOND_TFJS_MODULES (default
// /opt/visiond/deps/node/node_modules, installed by scripts/setup.sh).
'use strict';
const fs = require('fs');
const path = require('path');

const modules = process.env.VISIOND_TFJS_MODULES || '/opt/visiond/deps/node/node_modules';
const tf = require(path.join(modules, '@tensorflow/tfjs-core'));
require(path.join(modules, '@tensorflow/tfjs-backend-cpu'));
const tfc = require(path.join(modules, '@tensorflow/tfjs-converter'));

function die(msg) {
  process.stderr.write(`tfjs_oracle: ${msg}\n`);
  process.exit(2);
}

const args = { outputs: [], outs: [] };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const k = argv[i], v = argv[i + 1];
  if (v === undefined) die(`${k} needs a value`);
  if (k === '--model') args.model = v;
  else if (k === '--input') args.input = v;
  else if (k === '--shape') args.shape = v.split(',').map(Number);
  else if (k === '--output') args.outputs.push(v);
  else if (k === '--out') args.outs.push(v);
  else if (k === '--time') args.time = Number(v);
  else die(`unknown option ${k}`);
}
if (!args.model || !args.input || !args.shape || !args.outputs.length ||
    args.outputs.length !== args.outs.length)
  die('usage: --model M --input IN.f32 --shape N,H,W,C (--output NODE --out OUT.f32)...');

// The model JSON: a plain file, or a JS module exporting it (nsfwjs packaging).
const modelPath = path.resolve(args.model);
const model = modelPath.endsWith('.js') ? require(modelPath)
                                        : JSON.parse(fs.readFileSync(modelPath, 'utf8'));
const dir = path.dirname(modelPath);

// Weight shards: .bin files, or JS modules exporting base64 strings.
function shard(p) {
  for (const suffix of ['', '.min.js', '.js']) {
    const f = path.join(dir, p + suffix);
    if (!fs.existsSync(f)) continue;
    if (f.endsWith('.js')) return Buffer.from(require(f), 'base64');
    return fs.readFileSync(f);
  }
  die(`shard ${p} not found`);
}
const specs = [], buffers = [];
for (const group of model.weightsManifest) {
  for (const p of group.paths) buffers.push(shard(p));
  specs.push(...group.weights);
}
const all = Buffer.concat(buffers);
const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);

function resolveNode(name) {
  const names = model.modelTopology.node.map((n) => n.name);
  const want = name.replace(/:0$/, '');
  if (names.includes(want)) return want;
  const hits = names.filter((n) => n.endsWith('/' + want));
  if (hits.length !== 1) die(`output ${name}: ${hits.length} matching nodes`);
  return hits[0];
}

(async () => {
  await tf.setBackend('cpu');
  const handler = tf.io.fromMemory({ modelTopology: model.modelTopology, weightSpecs: specs,
                                     weightData, format: model.format,
                                     generatedBy: model.generatedBy,
                                     convertedBy: model.convertedBy });
  const gm = await tfc.loadGraphModel(handler);
  const raw = fs.readFileSync(args.input);
  const count = args.shape.reduce((a, b) => a * b, 1);
  if (raw.length !== count * 4) die(`input has ${raw.length} bytes, shape needs ${count * 4}`);
  const data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
  const x = tf.tensor(data, args.shape, 'float32');
  const nodes = args.outputs.map(resolveNode);
  let ys = gm.execute(x, nodes);
  if (!Array.isArray(ys)) ys = [ys];
  const report = [];
  for (let i = 0; i < ys.length; i++) {
    const v = await ys[i].data();
    fs.writeFileSync(args.outs[i], Buffer.from(new Float32Array(v).buffer));
    report.push({ node: nodes[i], shape: ys[i].shape, file: args.outs[i] });
  }
  const result = { outputs: report };
  if (args.time > 0) {
    const t0 = process.hrtime.bigint();
    for (let r = 0; r < args.time; r++) {
      let zs = gm.execute(x, nodes);
      if (!Array.isArray(zs)) zs = [zs];
      for (const z of zs) { await z.data(); z.dispose(); }
    }
    result.ms_per_run = Number(process.hrtime.bigint() - t0) / 1e6 / args.time;
  }
  process.stdout.write(JSON.stringify(result) + '\n');
})().catch((e) => die(e && e.stack ? e.stack : String(e)));
