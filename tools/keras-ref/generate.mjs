// Keras reference data generator for the Xception.Gpu tests.
//
// Builds keras.applications.Xception (include_top=True) with the TensorFlow.js
// layers API (the JavaScript port of Keras), fills every weight from a seeded
// PRNG, writes the weights in the Keras 2 legacy save_weights HDF5 layout and
// writes inputs / logits / probabilities as NumPy .npy files.
//
// Usage: node generate.mjs OUTDIR [--classes 10] [--sizes 71,72] [--batch 2] [--seed 1]
//        node generate.mjs --check-params      (prints the parameter count for 1000 classes, 299x299)

import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import * as h5wasm from 'h5wasm/node';

// ---------------------------------------------------------------------------
// Arguments

function parseArgs(argv) {
  const opts = { outDir: null, classes: 10, sizes: [71, 72], batch: 2, seed: 1, checkParams: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value after ${a}`);
      return argv[++i];
    };
    const int = (s, name) => {
      if (!/^-?\d+$/.test(s)) throw new Error(`${name} must be an integer, got '${s}'`);
      return parseInt(s, 10);
    };
    if (a === '--classes') opts.classes = int(next(), a);
    else if (a === '--sizes') opts.sizes = next().split(',').filter(s => s.length > 0).map(s => int(s, a));
    else if (a === '--batch') opts.batch = int(next(), a);
    else if (a === '--seed') opts.seed = int(next(), a);
    else if (a === '--check-params') opts.checkParams = true;
    else if (a === '-h' || a === '--help') { usage(); process.exit(0); }
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else if (opts.outDir === null) opts.outDir = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  if (!opts.checkParams && opts.outDir === null) { usage(); process.exit(2); }
  if (opts.classes < 1) throw new Error('--classes must be >= 1');
  if (opts.batch < 1) throw new Error('--batch must be >= 1');
  if (opts.sizes.length === 0) throw new Error('--sizes must list at least one size');
  for (const s of opts.sizes) {
    if (s < 71) throw new Error(`size ${s}: Xception needs inputs of at least 71x71`);
  }
  return opts;
}

function usage() {
  console.error('usage: node generate.mjs OUTDIR [--classes 10] [--sizes 71,72] [--batch 2] [--seed 1]');
  console.error('       node generate.mjs --check-params');
}

// ---------------------------------------------------------------------------
// PRNG: mulberry32, 32-bit state, returns doubles in [0, 1).

export function mulberry32(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// n float32 values uniform in [lo, hi). A double just below hi can round up
// to hi in float32; such values are replaced by the largest float32 below hi.
export function fillUniform(rng, n, lo, hi) {
  const out = new Float32Array(n);
  const span = hi - lo;
  const below = float32Below(hi);
  for (let i = 0; i < n; i++) {
    const v = Math.fround(lo + span * rng());
    out[i] = v >= hi ? below : v;
  }
  return out;
}

function float32Below(x) {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  if (f[0] > x) u[0] += f[0] > 0 ? -1 : 1;      // x itself not representable: round down
  else if (f[0] === x) {
    if (x > 0) u[0] -= 1;
    else if (x < 0) u[0] += 1;
    else return -1.401298464324817e-45;
  }
  return f[0];
}

// ---------------------------------------------------------------------------
// Model: keras.applications.Xception, include_top=True, logits output.

export function buildXception(size, classes) {
  const L = tf.layers;
  const conv = (filters, k, strides, padding, name) =>
    L.conv2d({ filters, kernelSize: k, strides, padding, useBias: false, name });
  const sep = (filters, name) =>
    L.separableConv2d({ filters, kernelSize: 3, padding: 'same', useBias: false, depthMultiplier: 1, name });
  const bn = (name) => L.batchNormalization({ axis: -1, momentum: 0.99, epsilon: 1e-3, name });
  const relu = (name) => L.activation({ activation: 'relu', name });
  const pool = (name) => L.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same', name });

  const input = tf.input({ shape: [size, size, 3], name: 'input_1' });

  // Entry flow
  let x = conv(32, 3, 2, 'valid', 'block1_conv1').apply(input);
  x = bn('block1_conv1_bn').apply(x);
  x = relu('block1_conv1_act').apply(x);
  x = conv(64, 3, 1, 'valid', 'block1_conv2').apply(x);
  x = bn('block1_conv2_bn').apply(x);
  x = relu('block1_conv2_act').apply(x);

  let residual = conv(128, 1, 2, 'same', 'conv2d_1').apply(x);
  residual = bn('batch_normalization_1').apply(residual);

  x = sep(128, 'block2_sepconv1').apply(x);
  x = bn('block2_sepconv1_bn').apply(x);
  x = relu('block2_sepconv2_act').apply(x);
  x = sep(128, 'block2_sepconv2').apply(x);
  x = bn('block2_sepconv2_bn').apply(x);
  x = pool('block2_pool').apply(x);
  x = L.add({ name: 'add_1' }).apply([x, residual]);

  const entryBlock = (block, filters, resIndex) => {
    let r = conv(filters, 1, 2, 'same', `conv2d_${resIndex}`).apply(x);
    r = bn(`batch_normalization_${resIndex}`).apply(r);
    let y = relu(`block${block}_sepconv1_act`).apply(x);
    y = sep(filters, `block${block}_sepconv1`).apply(y);
    y = bn(`block${block}_sepconv1_bn`).apply(y);
    y = relu(`block${block}_sepconv2_act`).apply(y);
    y = sep(filters, `block${block}_sepconv2`).apply(y);
    y = bn(`block${block}_sepconv2_bn`).apply(y);
    y = pool(`block${block}_pool`).apply(y);
    return L.add({ name: `add_${resIndex}` }).apply([y, r]);
  };
  x = entryBlock(3, 256, 2);
  x = entryBlock(4, 728, 3);

  // Middle flow
  for (let i = 0; i < 8; i++) {
    const b = i + 5;
    const r = x;
    let y = x;
    for (let j = 1; j <= 3; j++) {
      y = relu(`block${b}_sepconv${j}_act`).apply(y);
      y = sep(728, `block${b}_sepconv${j}`).apply(y);
      y = bn(`block${b}_sepconv${j}_bn`).apply(y);
    }
    x = L.add({ name: `add_${i + 4}` }).apply([y, r]);
  }

  // Exit flow
  residual = conv(1024, 1, 2, 'same', 'conv2d_4').apply(x);
  residual = bn('batch_normalization_4').apply(residual);

  x = relu('block13_sepconv1_act').apply(x);
  x = sep(728, 'block13_sepconv1').apply(x);
  x = bn('block13_sepconv1_bn').apply(x);
  x = relu('block13_sepconv2_act').apply(x);
  x = sep(1024, 'block13_sepconv2').apply(x);
  x = bn('block13_sepconv2_bn').apply(x);
  x = pool('block13_pool').apply(x);
  x = L.add({ name: 'add_12' }).apply([x, residual]);

  x = sep(1536, 'block14_sepconv1').apply(x);
  x = bn('block14_sepconv1_bn').apply(x);
  x = relu('block14_sepconv1_act').apply(x);
  x = sep(2048, 'block14_sepconv2').apply(x);
  x = bn('block14_sepconv2_bn').apply(x);
  x = relu('block14_sepconv2_act').apply(x);

  x = L.globalAveragePooling2d({ name: 'avg_pool' }).apply(x);
  // 'linear' so the model returns logits; softmax is applied separately.
  x = L.dense({ units: classes, activation: 'linear', useBias: true, name: 'predictions' }).apply(x);

  return tf.model({ inputs: input, outputs: x, name: 'xception' });
}

// ---------------------------------------------------------------------------
// Weights. Each layer's weights in Keras order with Keras names and shapes.
// Returns [{ layer, weights: [{ name, shape, init }] }] for every layer in model order.

export function describeWeights(model) {
  const out = [];
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    const shapes = layer.weights.map(w => w.shape);
    let names;
    switch (cls) {
      case 'InputLayer': case 'Activation': case 'MaxPooling2D': case 'Add': case 'GlobalAveragePooling2D':
        names = []; break;
      case 'Conv2D': names = ['kernel']; break;
      case 'SeparableConv2D': names = ['depthwise_kernel', 'pointwise_kernel']; break;
      case 'BatchNormalization': names = ['gamma', 'beta', 'moving_mean', 'moving_variance']; break;
      case 'Dense': names = ['kernel', 'bias']; break;
      default: throw new Error(`unexpected layer class ${cls} (${layer.name})`);
    }
    if (names.length !== shapes.length) {
      throw new Error(`${layer.name}: expected ${names.length} weights, tfjs has ${shapes.length}`);
    }
    // Cross-check against the tfjs variable names (originalName is "<layer>/<weight>").
    layer.weights.forEach((w, i) => {
      const expected = `${layer.name}/${names[i]}`;
      if (w.originalName !== expected) throw new Error(`weight ${i} of ${layer.name} is ${w.originalName}, expected ${expected}`);
    });
    out.push({
      layer: layer.name,
      cls,
      weights: names.map((n, i) => ({ name: n, shape: shapes[i].slice() })),
    });
  }
  return out;
}

function glorotLimit(fanIn, fanOut) { return Math.sqrt(6 / (fanIn + fanOut)); }

// Fills the weights in model order, weights in layer order, values in C order.
export function generateWeights(desc, seed) {
  const rng = mulberry32(seed);
  for (const l of desc) {
    for (const w of l.weights) {
      const s = w.shape;
      const n = s.reduce((p, c) => p * c, 1);
      let lo, hi;
      if (l.cls === 'Conv2D' && w.name === 'kernel') {
        const a = glorotLimit(s[0] * s[1] * s[2], s[0] * s[1] * s[3]); lo = -a; hi = a;
      } else if (w.name === 'depthwise_kernel') {
        const a = glorotLimit(9, 9); lo = -a; hi = a;
      } else if (w.name === 'pointwise_kernel') {
        const a = glorotLimit(s[2], s[3]); lo = -a; hi = a;
      } else if (l.cls === 'Dense' && w.name === 'kernel') {
        const a = glorotLimit(s[0], s[1]); lo = -a; hi = a;
      } else if (l.cls === 'Dense' && w.name === 'bias') {
        lo = -0.1; hi = 0.1;
      } else if (w.name === 'gamma' || w.name === 'moving_variance') {
        lo = 0.5; hi = 1.5;
      } else if (w.name === 'beta' || w.name === 'moving_mean') {
        lo = -0.2; hi = 0.2;
      } else {
        throw new Error(`no initializer for ${l.layer}/${w.name}`);
      }
      w.data = fillUniform(rng, n, lo, hi);
    }
  }
}

export function applyWeights(model, desc) {
  const byName = new Map(desc.map(d => [d.layer, d]));
  for (const layer of model.layers) {
    const d = byName.get(layer.name);
    if (!d) throw new Error(`no weights for layer ${layer.name}`);
    if (d.weights.length === 0) continue;
    const tensors = d.weights.map(w => tf.tensor(w.data, w.shape, 'float32'));
    layer.setWeights(tensors);
    tensors.forEach(t => t.dispose());
  }
}

// ---------------------------------------------------------------------------
// HDF5 (Keras 2 legacy save_weights layout).

// Fixed-length strings, one length for the whole array, as h5py stores numpy
// 'S' arrays. h5wasm's 'A<n>' dtype is H5T_C_S1 with ASCII cset and NULLTERM
// padding (h5py writes NULLPAD, which h5wasm cannot select); the size is the
// longest name + 1 so that every element keeps its terminating zero byte.
function stringDtype(strings) {
  let n = 0;
  for (const s of strings) n = Math.max(n, Buffer.byteLength(s, 'utf8'));
  return `A${n + 1}`;
}

function writeStringArrayAttr(obj, name, strings) {
  obj.create_attribute(name, strings, [strings.length], stringDtype(strings));
}

function writeScalarStringAttr(obj, name, value) {
  obj.create_attribute(name, value, [], stringDtype([value]));
}

export async function writeH5(file, desc) {
  await h5wasm.ready;
  if (fs.existsSync(file)) fs.unlinkSync(file);
  // HDF5 stamps object headers with the current time (obj_track_times);
  // pin the clock while writing so the file is byte-for-byte reproducible.
  const realNow = Date.now;
  Date.now = () => 0;
  try {
    const f = new h5wasm.File(file, 'w');
    try {
      writeStringArrayAttr(f, 'layer_names', desc.map(d => d.layer));
      writeScalarStringAttr(f, 'backend', 'tensorflow');
      writeScalarStringAttr(f, 'keras_version', '2.2.4');
      for (const d of desc) {
        const g = f.create_group(d.layer);
        const names = d.weights.map(w => `${d.layer}/${w.name}:0`);
        writeStringArrayAttr(g, 'weight_names', names);
        if (d.weights.length === 0) continue;
        const inner = g.create_group(d.layer);
        for (const w of d.weights) {
          inner.create_dataset({ name: `${w.name}:0`, data: w.data, shape: w.shape, dtype: '<f4' });
        }
      }
    } finally {
      f.close();
    }
  } finally {
    Date.now = realNow;
  }
}

// ---------------------------------------------------------------------------
// NumPy .npy, format 1.0, '<f4', C order.

export function writeNpy(file, shape, data) {
  if (!(data instanceof Float32Array)) data = Float32Array.from(data);
  const n = shape.reduce((p, c) => p * c, 1);
  if (n !== data.length) throw new Error(`${file}: shape ${shape} does not match ${data.length} values`);
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  // magic (6) + version (2) + header length (2) + header, padded with spaces and
  // ending in '\n' so that the data starts on a 64-byte boundary.
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  if (header.length > 65535) throw new Error('npy header too long');
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1; pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const body = Buffer.alloc(data.length * 4);
  for (let i = 0; i < data.length; i++) body.writeFloatLE(data[i], i * 4);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'), body]));
}

// ---------------------------------------------------------------------------

function sha256(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  await tf.setBackend('cpu');
  await tf.ready();

  if (opts.checkParams) {
    const m = buildXception(299, 1000);
    let trainable = 0;
    for (const w of m.trainableWeights) trainable += w.shape.reduce((p, c) => p * c, 1);
    const total = m.countParams();
    console.log(`Xception(299x299x3, 1000 classes): total params ${total}, trainable ${trainable}, non-trainable ${total - trainable}`);
    if (opts.outDir === null) return;
  }

  fs.mkdirSync(opts.outDir, { recursive: true });
  const files = [];
  const t0 = Date.now();

  // Weights depend on the class count only, not on the input size.
  const first = buildXception(opts.sizes[0], opts.classes);
  const desc = describeWeights(first);
  generateWeights(desc, opts.seed);
  first.dispose();

  const h5Name = `xception_c${opts.classes}.h5`;
  await writeH5(path.join(opts.outDir, h5Name), desc);
  files.push(h5Name);
  console.log(`wrote ${h5Name} (${desc.length} layers) in ${Date.now() - t0} ms`);

  for (const S of opts.sizes) {
    const t1 = Date.now();
    const model = buildXception(S, opts.classes);
    const names = model.layers.map(l => l.name).join(',');
    if (names !== desc.map(d => d.layer).join(',')) throw new Error(`layer order differs at size ${S}`);
    applyWeights(model, desc);

    const rng = mulberry32(opts.seed + S);
    const inputShape = [opts.batch, S, S, 3];
    const inputData = fillUniform(rng, opts.batch * S * S * 3, -1, 1);

    const x = tf.tensor(inputData, inputShape, 'float32');
    const logitsT = model.predict(x, { batchSize: opts.batch });
    const probsT = tf.softmax(logitsT, -1);
    const logits = logitsT.dataSync();
    const probs = probsT.dataSync();
    tf.dispose([x, logitsT, probsT]);
    model.dispose();

    for (const v of logits) if (!Number.isFinite(v)) throw new Error(`size ${S}: non-finite logit`);

    writeNpy(path.join(opts.outDir, `input_${S}.npy`), inputShape, inputData);
    writeNpy(path.join(opts.outDir, `logits_${S}.npy`), [opts.batch, opts.classes], logits);
    writeNpy(path.join(opts.outDir, `probs_${S}.npy`), [opts.batch, opts.classes], probs);
    files.push(`input_${S}.npy`, `logits_${S}.npy`, `probs_${S}.npy`);
    console.log(`size ${S}: predicted batch ${opts.batch} in ${Date.now() - t1} ms; logits[0][0..3] = ` +
      Array.from(logits.slice(0, Math.min(4, opts.classes))).map(v => v.toFixed(5)).join(' '));
  }

  const manifest = {
    generator: 'tools/keras-ref/generate.mjs',
    model: 'keras.applications.Xception(include_top=True), predictions activation linear (logits)',
    classes: opts.classes,
    sizes: opts.sizes,
    batch: opts.batch,
    seed: opts.seed,
    tfjs_version: tf.version.tfjs,
    tfjs_backend: tf.getBackend(),
    files: Object.fromEntries(files.map(f => [f, { sha256: sha256(path.join(opts.outDir, f)) }])),
  };
  fs.writeFileSync(path.join(opts.outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  console.log(`wrote manifest.json; total ${Date.now() - t0} ms`);
}

// Run main only when executed directly (verify.mjs imports the helpers).
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch(err => { console.error(err); process.exit(1); });
}
