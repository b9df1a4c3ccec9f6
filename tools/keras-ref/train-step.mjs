// Keras reference data for one training step of Xception.
//
// Writes a tiny image-folder dataset (PNG), Xception with seeded random weights
// (initial.h5), runs ONE full-batch SGD step with TensorFlow.js layers' own
// training machinery (model.trainOnBatch: BatchNormalization in training mode,
// moving statistics updated, softmax cross-entropy, plain SGD) and writes the
// weights after the step (after.h5) and step.json.
//
// Usage: node train-step.mjs OUTDIR [--classes 3] [--size 71] [--images-per-class 2] [--lr 0.1] [--seed 2] [--stock-kernels]

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import {
  mulberry32, buildXception, describeWeights, generateWeights, applyWeights, writeH5, writeNpy,
} from './generate.mjs';

// ---------------------------------------------------------------------------
// Arguments

// Also used by train-step-frozen.mjs, which takes the same arguments except --stock-kernels.
export function parseStepArgs(argv, script, { stockKernels = true } = {}) {
  const usage = () => console.error(`usage: node ${script} OUTDIR [--classes 3] [--size 71] [--images-per-class 2] [--lr 0.1] [--seed 2]` +
    (stockKernels ? ' [--stock-kernels]' : ''));
  const opts = { outDir: null, classes: 3, size: 71, imagesPerClass: 2, lr: 0.1, seed: 2, stockKernels: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value after ${a}`);
      return argv[++i];
    };
    const int = (s) => {
      if (!/^-?\d+$/.test(s)) throw new Error(`${a} must be an integer, got '${s}'`);
      return parseInt(s, 10);
    };
    if (a === '--classes') opts.classes = int(next());
    else if (a === '--size') opts.size = int(next());
    else if (a === '--images-per-class') opts.imagesPerClass = int(next());
    else if (a === '--seed') opts.seed = int(next());
    else if (a === '--lr') {
      const s = next();
      if (!/^[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$/.test(s)) throw new Error(`--lr must be a number, got '${s}'`);
      opts.lr = parseFloat(s);
    }
    else if (a === '--stock-kernels' && stockKernels) opts.stockKernels = true;
    else if (a === '-h' || a === '--help') { usage(); process.exit(0); }
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else if (opts.outDir === null) opts.outDir = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  if (opts.outDir === null) { usage(); process.exit(2); }
  if (opts.classes < 2 || opts.classes > 26) throw new Error('--classes must be in 2..26 (folders class_a .. class_z)');
  if (opts.size < 71) throw new Error('--size: Xception needs inputs of at least 71x71');
  if (opts.imagesPerClass < 1) throw new Error('--images-per-class must be >= 1');
  if (!(opts.lr > 0)) throw new Error('--lr must be > 0');
  return opts;
}

// ---------------------------------------------------------------------------
// PNG: 8-bit RGB (colour type 2), no interlace, one IDAT, filter 0 on every row.

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = (c & 1) ? (0xEDB88320 ^ (c >>> 1)) : (c >>> 1);
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(buf, crc = 0) {
  let c = (crc ^ 0xFFFFFFFF) >>> 0;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xFF] ^ (c >>> 8);
  return (c ^ 0xFFFFFFFF) >>> 0;
}

function pngChunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length, 0);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td), 0);
  return Buffer.concat([len, td, crc]);
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]);

// rgb: Uint8Array of height*width*3, row-major, RGB interleaved.
export function encodePng(width, height, rgb) {
  if (rgb.length !== width * height * 3) throw new Error('encodePng: size mismatch');
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;   // bit depth
  ihdr[9] = 2;   // colour type: truecolour RGB
  ihdr[10] = 0;  // compression: deflate
  ihdr[11] = 0;  // filter method 0
  ihdr[12] = 0;  // no interlace
  const stride = width * 3;
  const raw = Buffer.alloc(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    raw[y * (stride + 1)] = 0; // filter type None
    Buffer.from(rgb.buffer, rgb.byteOffset + y * stride, stride).copy(raw, y * (stride + 1) + 1);
  }
  const idat = zlib.deflateSync(raw, { level: 9 });
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), pngChunk('IDAT', idat), pngChunk('IEND', Buffer.alloc(0))]);
}

// Decodes exactly the PNGs encodePng writes (8-bit RGB, no interlace, filter 0),
// checking every CRC. Returns { width, height, rgb }.
export function decodePng(buf) {
  if (!buf.subarray(0, 8).equals(PNG_SIGNATURE)) throw new Error('not a PNG');
  let pos = 8, width = 0, height = 0;
  const idat = [];
  for (;;) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    const data = buf.subarray(pos + 8, pos + 8 + len);
    if (crc32(buf.subarray(pos + 4, pos + 8 + len)) !== buf.readUInt32BE(pos + 8 + len)) throw new Error(`PNG ${type}: bad CRC`);
    pos += 12 + len;
    if (type === 'IHDR') {
      width = data.readUInt32BE(0); height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[9] !== 2 || data[12] !== 0) throw new Error('PNG: only 8-bit RGB without interlace');
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * 3;
  if (raw.length !== height * (stride + 1)) throw new Error('PNG: bad data length');
  const rgb = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    if (raw[y * (stride + 1)] !== 0) throw new Error('PNG: only filter type 0');
    raw.copy(rgb, y * stride, y * (stride + 1) + 1, (y + 1) * (stride + 1));
  }
  return { width, height, rgb };
}

// ---------------------------------------------------------------------------
// Dataset: smooth random patterns. Per image and channel: a base level plus
// three plane waves with random amplitude, frequency (cycles per image) and
// phase. The PRNG is mulberry32(seed + 100003), one stream over all images in
// batch order (class order, then file order).

export const IMAGE_SEED_OFFSET = 100003;

export function classNames(classes) {
  return Array.from({ length: classes }, (_, i) => `class_${String.fromCharCode(97 + i)}`);
}

export function makeImages(size, classes, perClass, seed) {
  const rng = mulberry32(seed + IMAGE_SEED_OFFSET);
  const u = (lo, hi) => lo + (hi - lo) * rng();
  const images = [];
  for (let c = 0; c < classes; c++) {
    for (let k = 0; k < perClass; k++) {
      const rgb = new Uint8Array(size * size * 3);
      for (let ch = 0; ch < 3; ch++) {
        const base = u(-0.4, 0.4);
        const waves = [];
        for (let w = 0; w < 3; w++) {
          waves.push({ a: u(0.1, 0.35), fx: u(-3, 3), fy: u(-3, 3), ph: u(0, 2 * Math.PI) });
        }
        for (let y = 0; y < size; y++) {
          for (let x = 0; x < size; x++) {
            let v = base;
            for (const w of waves) v += w.a * Math.sin(2 * Math.PI * (w.fx * x + w.fy * y) / size + w.ph);
            const p = Math.round(127.5 + 127.5 * v);
            rgb[(y * size + x) * 3 + ch] = p < 0 ? 0 : p > 255 ? 255 : p;
          }
        }
      }
      images.push({ cls: c, index: k, rgb });
    }
  }
  return images;
}

// Keras 'tf' preprocessing in float32: x / 127.5 - 1.
export function preprocess(rgb) {
  const out = new Float32Array(rgb.length);
  for (let i = 0; i < rgb.length; i++) out[i] = Math.fround(Math.fround(rgb[i] / 127.5) - 1);
  return out;
}

// ---------------------------------------------------------------------------
// Conv2DBackpropFilter for the CPU backend, bit-identical to tfjs' own.
//
// tfjs-backend-cpu 4.22's kernel computes each filter element as a float64
// dot product over (batch, out row, out col), in that order, through
// TensorBuffer.get, and stores it as float32. Xception's 1x1 (pointwise)
// convolutions make that take about 7 minutes for one step at 71x71, batch 6.
// This kernel adds exactly the same float64 products in exactly the same order
// for every filter element (so the float32 results are the same bits) but
// walks the data contiguously. `--stock-kernels` keeps tfjs' kernel.

export function registerFastConv2DBackpropFilter() {
  const name = 'Conv2DBackpropFilter';
  const stock = tf.getKernel(name, 'cpu');
  if (!stock) throw new Error(`no cpu kernel ${name}`);
  const stockFunc = stock.kernelFunc;
  const kernelFunc = (args) => {
    const { inputs, backend, attrs } = args;
    const { x, dy } = inputs;
    const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs;
    const convInfo = tf.backend_util.computeConv2DInfo(x.shape, filterShape, strides, 1, pad, dimRoundingMode, false,
      tf.backend_util.convertConv2DDataFormat(dataFormat));
    const xVals = backend.data.get(x.dataId).values;
    const dyVals = backend.data.get(dy.dataId).values;
    if (convInfo.dataFormat !== 'channelsLast' || x.dtype !== 'float32' || dy.dtype !== 'float32' ||
        !(xVals instanceof Float32Array) || !(dyVals instanceof Float32Array)) {
      return stockFunc(args);
    }
    const { strideHeight, strideWidth, filterHeight, filterWidth, inChannels, outChannels, batchSize,
      inHeight, inWidth, outHeight, outWidth } = convInfo;
    const topPad = convInfo.padInfo.top, leftPad = convInfo.padInfo.left;
    const dW = new Float32Array(filterHeight * filterWidth * inChannels * outChannels);
    const acc = new Float64Array(inChannels * outChannels);
    for (let wR = 0; wR < filterHeight; ++wR) {
      // Same bounds as the stock kernel (yRMax may be fractional).
      const yRMin = Math.max(0, Math.ceil((topPad - wR) / strideHeight));
      const yRMax = Math.min(outHeight, (inHeight + topPad - wR) / strideHeight);
      for (let wC = 0; wC < filterWidth; ++wC) {
        const yCMin = Math.max(0, Math.ceil((leftPad - wC) / strideWidth));
        const yCMax = Math.min(outWidth, (inWidth + leftPad - wC) / strideWidth);
        acc.fill(0);
        for (let b = 0; b < batchSize; ++b) {
          for (let yR = yRMin; yR < yRMax; ++yR) {
            const xR = wR + yR * strideHeight - topPad;
            for (let yC = yCMin; yC < yCMax; ++yC) {
              const xC = wC + yC * strideWidth - leftPad;
              const xOff = ((b * inHeight + xR) * inWidth + xC) * inChannels;
              const dyOff = ((b * outHeight + yR) * outWidth + yC) * outChannels;
              for (let d1 = 0; d1 < inChannels; ++d1) {
                const xv = xVals[xOff + d1];
                const row = d1 * outChannels;
                for (let d2 = 0; d2 < outChannels; ++d2) acc[row + d2] += xv * dyVals[dyOff + d2];
              }
            }
          }
        }
        dW.set(acc, (wR * filterWidth + wC) * inChannels * outChannels);
      }
    }
    return backend.makeTensorInfo(convInfo.filterShape, 'float32', dW);
  };
  tf.unregisterKernel(name, 'cpu');
  tf.registerKernel({ kernelName: name, backendName: 'cpu', kernelFunc });
  return stockFunc;
}

// Compares the fast kernel with the stock one on small random cases
// (strides 1 and 2, 'same' and 'valid', 1x1 and 3x3): the bits must agree.
function selfTestConv2DBackpropFilter(stockFunc) {
  const rng = mulberry32(12345);
  let cases = 0;
  for (const [h, w, c1, c2, k, s, pad] of [
    [7, 7, 3, 5, 3, 2, 'valid'], [8, 6, 4, 6, 3, 1, 'same'], [9, 9, 5, 4, 1, 2, 'same'], [5, 5, 8, 8, 1, 1, 'valid'],
    [6, 7, 2, 3, 3, 2, 'same'],
  ]) {
    const x = tf.tensor(Float32Array.from({ length: 2 * h * w * c1 }, () => rng() * 2 - 1), [2, h, w, c1]);
    const filt = tf.zeros([k, k, c1, c2]);
    const y = tf.conv2d(x, filt, s, pad);
    const dy = tf.tensor(Float32Array.from({ length: y.size }, () => rng() * 2 - 1), y.shape);
    const attrs = { strides: [s, s], pad, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: [k, k, c1, c2] };
    const fast = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs);
    const backend = tf.backend();
    const ref = stockFunc({ inputs: { x, dy }, backend, attrs });
    const a = fast.dataSync(), b = backend.data.get(ref.dataId).values;
    if (a.length !== b.length || !a.every((v, i) => Object.is(v, b[i]))) {
      throw new Error(`fast Conv2DBackpropFilter differs from tfjs' kernel for ${JSON.stringify([h, w, c1, c2, k, s, pad])}`);
    }
    backend.disposeData(ref.dataId);
    tf.dispose([x, filt, y, dy, fast]);
    cases++;
  }
  return cases;
}

// ---------------------------------------------------------------------------
// Helpers

export function sha256(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

// Current weights of a model in the describeWeights layout (Float32Array copies).
export function readWeights(model) {
  const desc = describeWeights(model);
  const byName = new Map(desc.map(d => [d.layer, d]));
  for (const layer of model.layers) {
    const d = byName.get(layer.name);
    layer.weights.forEach((w, i) => { d.weights[i].data = Float32Array.from(w.read().dataSync()); });
  }
  return desc;
}

// The weights of a describeWeights layout by "layer/weight" name.
export function weightMap(desc) {
  const m = new Map();
  for (const d of desc) for (const w of d.weights) m.set(`${d.layer}/${w.name}`, w.data);
  return m;
}

function norm(a) { let s = 0; for (const v of a) s += v * v; return Math.sqrt(s); }
function diffNorm(a, b) { let s = 0; for (let i = 0; i < a.length; i++) { const d = a[i] - b[i]; s += d * d; } return Math.sqrt(s); }

// Sparse softmax cross-entropy from logits, per sample; the model outputs the
// `predictions` logits (linear activation), targets are one-hot (batch, classes).
// tfjs-layers takes the mean over the batch.
function softmaxCrossEntropyFromLogits(yTrue, yPred) {
  return tf.tidy(() => tf.neg(tf.sum(tf.mul(yTrue, tf.logSoftmax(yPred, -1)), -1)));
}

// Numerical check of tfjs-layers' BatchNormalization conventions on a tiny
// known input: x = [1, 2, 3, 4] (one channel), gamma 1, beta 0, moving mean 0,
// moving variance 1, epsilon 1e-3, momentum 0.99. Biased variance 1.25,
// unbiased 5/3.
async function checkBnConventions() {
  const xs = [1, 2, 3, 4];
  const mean = 2.5, vBiased = 1.25, vUnbiased = 5 / 3, eps = 1e-3;
  const build = () => {
    const m = tf.sequential();
    m.add(tf.layers.batchNormalization({ inputShape: [1], momentum: 0.99, epsilon: eps, name: 'bn' }));
    return m;
  };
  const x = tf.tensor2d(xs, [4, 1]);

  // Training-mode normalisation.
  const m1 = build();
  const y = m1.apply(x, { training: true }).dataSync();
  let errB = 0, errU = 0;
  xs.forEach((v, i) => {
    errB = Math.max(errB, Math.abs(y[i] - (v - mean) / Math.sqrt(vBiased + eps)));
    errU = Math.max(errU, Math.abs(y[i] - (v - mean) / Math.sqrt(vUnbiased + eps)));
  });
  const normalization = errB < 1e-6 && errU > 1e-3 ? 'biased' : errU < 1e-6 && errB > 1e-3 ? 'unbiased' : 'unclear';

  // Moving statistics after one trainOnBatch (lr 0, so gamma/beta stay).
  const m2 = build();
  m2.compile({ optimizer: tf.train.sgd(0), loss: 'meanSquaredError' });
  await m2.trainOnBatch(x, tf.zeros([4, 1]));
  const [, , mm, mv] = m2.getLayer('bn').getWeights().map(t => t.dataSync()[0]);
  const mvB = 0.99 * 1 + 0.01 * vBiased, mvU = 0.99 * 1 + 0.01 * vUnbiased;
  const moving = Math.abs(mv - mvB) < 1e-6 ? 'biased' : Math.abs(mv - mvU) < 1e-6 ? 'unbiased' : 'unclear';
  tf.dispose([x]);
  m1.dispose(); m2.dispose();
  return {
    input: xs,
    training_output: Array.from(y),
    training_normalization_variance: normalization,
    moving_mean_after_trainOnBatch: mm,
    moving_variance_after_trainOnBatch: mv,
    moving_variance_if_biased: mvB,
    moving_variance_if_unbiased: mvU,
    moving_variance_update: moving,
  };
}

// ---------------------------------------------------------------------------

async function main() {
  const opts = parseStepArgs(process.argv.slice(2), 'train-step.mjs');
  await tf.setBackend('cpu');
  await tf.ready();
  const t0 = Date.now();
  const { size, classes } = opts;
  if (!opts.stockKernels) {
    const stockFunc = registerFastConv2DBackpropFilter();
    const n = selfTestConv2DBackpropFilter(stockFunc);
    console.log(`Conv2DBackpropFilter: using the bit-identical fast kernel (${n} self-test cases equal to tfjs' kernel)`);
  } else {
    console.log("Conv2DBackpropFilter: tfjs' stock kernel (slow)");
  }
  fs.mkdirSync(opts.outDir, { recursive: true });
  const files = [];

  // --- BN conventions on a tiny layer ---
  const bnCheck = await checkBnConventions();
  console.log(`BN conventions (tiny layer, x=[1,2,3,4]): training normalisation uses the ${bnCheck.training_normalization_variance} variance; ` +
    `moving variance after trainOnBatch ${bnCheck.moving_variance_after_trainOnBatch} ` +
    `(biased would give ${bnCheck.moving_variance_if_biased}, unbiased ${bnCheck.moving_variance_if_unbiased}) -> ${bnCheck.moving_variance_update}`);
  if (bnCheck.training_normalization_variance === 'unclear' || bnCheck.moving_variance_update === 'unclear') {
    throw new Error('BN convention check inconclusive');
  }

  // --- dataset ---
  const names = classNames(classes);
  const images = makeImages(size, classes, opts.imagesPerClass, opts.seed);
  const imagePaths = [];
  for (const img of images) {
    const rel = `images/${names[img.cls]}/${img.index}.png`;
    fs.mkdirSync(path.join(opts.outDir, 'images', names[img.cls]), { recursive: true });
    fs.writeFileSync(path.join(opts.outDir, rel), encodePng(size, size, img.rgb));
    imagePaths.push(rel);
    files.push(rel);
  }
  // The batch is built from the files as written (decoded back, CRCs checked).
  const batch = images.length;
  const inputData = new Float32Array(batch * size * size * 3);
  imagePaths.forEach((rel, b) => {
    const png = decodePng(fs.readFileSync(path.join(opts.outDir, rel)));
    if (png.width !== size || png.height !== size) throw new Error(`${rel}: decoded ${png.width}x${png.height}`);
    if (!Buffer.from(png.rgb).equals(Buffer.from(images[b].rgb))) throw new Error(`${rel}: pixels differ after decoding`);
    inputData.set(preprocess(png.rgb), b * size * size * 3);
  });
  const labels = images.map(img => img.cls);
  writeNpy(path.join(opts.outDir, 'input.npy'), [batch, size, size, 3], inputData);
  files.push('input.npy');
  console.log(`dataset: ${batch} images ${size}x${size} in ${classes} classes (${names.join(', ')})`);

  // --- initial weights ---
  const model = buildXception(size, classes);
  const initial = describeWeights(model);
  generateWeights(initial, opts.seed);
  applyWeights(model, initial);
  await writeH5(path.join(opts.outDir, 'initial.h5'), initial);
  files.push('initial.h5');

  const x = tf.tensor(inputData, [batch, size, size, 3], 'float32');
  const yOneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), classes).toFloat();

  // --- reference forward pass in training mode on a second copy ---
  // Exposes the input of every BatchNormalization layer and the avg_pool
  // features, to predict the BN moving statistics and the dense-layer update.
  const twin = buildXception(size, classes);
  applyWeights(twin, initial);
  const bnLayers = twin.layers.filter(l => l.getClassName() === 'BatchNormalization');
  const probe = tf.model({
    inputs: twin.inputs,
    outputs: [twin.outputs[0], twin.getLayer('avg_pool').output, ...bnLayers.map(l => l.input)],
  });
  const t1 = Date.now();
  const probeOut = probe.apply(x, { training: true });
  const logitsBefore = Float32Array.from(probeOut[0].dataSync());
  const features = probeOut[1].dataSync();
  const bnStats = new Map();
  bnLayers.forEach((l, i) => {
    const t = probeOut[2 + i];
    const ch = t.shape[t.shape.length - 1];
    const n = t.size / ch;
    const v = t.dataSync();
    const mean = new Float64Array(ch), m2 = new Float64Array(ch);
    for (let j = 0; j < v.length; j++) mean[j % ch] += v[j];
    for (let c = 0; c < ch; c++) mean[c] /= n;
    for (let j = 0; j < v.length; j++) { const d = v[j] - mean[j % ch]; m2[j % ch] += d * d; }
    bnStats.set(l.name, { n, mean, biased: m2.map(s => s / n), unbiased: m2.map(s => s / (n - 1)) });
  });
  tf.dispose(probeOut);
  console.log(`reference training-mode forward: ${Date.now() - t1} ms`);

  // Loss and expected dense update from the training-mode logits (float64).
  let lossRef = 0;
  const dLogits = new Float64Array(batch * classes); // (softmax - onehot) / batch
  for (let b = 0; b < batch; b++) {
    const row = Array.from(logitsBefore.subarray(b * classes, (b + 1) * classes));
    const mx = Math.max(...row);
    const e = row.map(v => Math.exp(v - mx));
    const z = e.reduce((p, c) => p + c, 0);
    lossRef += -(row[labels[b]] - mx - Math.log(z)) / batch;
    for (let c = 0; c < classes; c++) dLogits[b * classes + c] = (e[c] / z - (c === labels[b] ? 1 : 0)) / batch;
  }
  const lossBuiltin = tf.tidy(() =>
    tf.metrics.categoricalCrossentropy(yOneHot, tf.softmax(tf.tensor(logitsBefore, [batch, classes]))).mean().dataSync()[0]);

  // --- the training step ---
  model.compile({ optimizer: tf.train.sgd(opts.lr), loss: softmaxCrossEntropyFromLogits });
  const t2 = Date.now();
  const lossBefore = await model.trainOnBatch(x, yOneHot);
  const stepMs = Date.now() - t2;
  console.log(`trainOnBatch (forward + backward + SGD update, batch ${batch}): ${stepMs} ms, loss ${lossBefore}`);

  const after = readWeights(model);
  await writeH5(path.join(opts.outDir, 'after.h5'), after);
  files.push('after.h5');
  writeNpy(path.join(opts.outDir, 'logits_before.npy'), [batch, classes], logitsBefore);
  files.push('logits_before.npy');

  // --- checks ---
  const failures = [];
  const check = (cond, msg) => { if (!cond) { failures.push(msg); console.log(`FAIL ${msg}`); } };
  const W0 = weightMap(initial), W1 = weightMap(after), Wt = weightMap(readWeights(twin));

  check(Math.abs(lossBefore - lossRef) < 1e-5, `trainOnBatch loss ${lossBefore} != loss of training-mode logits ${lossRef}`);
  check(Math.abs(lossBuiltin - lossRef) < 1e-5, `tfjs-layers categoricalCrossentropy on softmax ${lossBuiltin} != ${lossRef}`);

  // Dense layer: bias -= lr * sum_b dLogits, kernel -= lr * features^T dLogits.
  const lr32 = Math.fround(opts.lr);
  const nFeat = features.length / batch;
  let denseErr = 0, denseMax = 0;
  {
    const k0 = W0.get('predictions/kernel'), k1 = W1.get('predictions/kernel');
    const b0 = W0.get('predictions/bias'), b1 = W1.get('predictions/bias');
    for (let c = 0; c < classes; c++) {
      let g = 0;
      for (let b = 0; b < batch; b++) g += dLogits[b * classes + c];
      denseErr = Math.max(denseErr, Math.abs((b1[c] - b0[c]) + lr32 * g));
      denseMax = Math.max(denseMax, Math.abs(lr32 * g));
      for (let i = 0; i < nFeat; i++) {
        let gk = 0;
        for (let b = 0; b < batch; b++) gk += features[b * nFeat + i] * dLogits[b * classes + c];
        denseErr = Math.max(denseErr, Math.abs((k1[i * classes + c] - k0[i * classes + c]) + lr32 * gk));
        denseMax = Math.max(denseMax, Math.abs(lr32 * gk));
      }
    }
  }
  check(denseErr < 1e-5 * Math.max(1, denseMax) + 1e-6, `predictions update differs from -lr * analytic gradient by ${denseErr}`);

  // BN moving statistics: tfjs computes moving - (moving - stat) * (1 - momentum) in float32.
  const decay = Math.fround(1 - 0.99);
  const movingUpdate = (m, s) => Math.fround(m - Math.fround(Math.fround(m - s) * decay));
  let errMean = 0, errVarB = 0, errVarU = 0, changedMean = 0, changedVar = 0, total = 0, twinDiff = 0;
  let layersBiasedCloser = 0;
  for (const l of bnLayers) {
    const s = bnStats.get(l.name);
    const mm0 = W0.get(`${l.name}/moving_mean`), mm1 = W1.get(`${l.name}/moving_mean`);
    const mv0 = W0.get(`${l.name}/moving_variance`), mv1 = W1.get(`${l.name}/moving_variance`);
    let eB = 0, eU = 0;
    for (let c = 0; c < mm0.length; c++) {
      errMean = Math.max(errMean, Math.abs(mm1[c] - movingUpdate(mm0[c], s.mean[c])));
      eB = Math.max(eB, Math.abs(mv1[c] - movingUpdate(mv0[c], s.biased[c])));
      eU = Math.max(eU, Math.abs(mv1[c] - movingUpdate(mv0[c], s.unbiased[c])));
      if (mm1[c] !== mm0[c]) changedMean++;
      if (mv1[c] !== mv0[c]) changedVar++;
      total++;
    }
    errVarB = Math.max(errVarB, eB); errVarU = Math.max(errVarU, eU);
    if (eB < eU) layersBiasedCloser++;
    for (const w of ['moving_mean', 'moving_variance']) {
      const a = W1.get(`${l.name}/${w}`), b = Wt.get(`${l.name}/${w}`);
      for (let c = 0; c < a.length; c++) twinDiff = Math.max(twinDiff, Math.abs(a[c] - b[c]));
    }
  }
  console.log(`BN moving statistics (${bnLayers.length} layers, ${total} channels): changed mean ${changedMean}/${total}, variance ${changedVar}/${total}; ` +
    `max |after - predicted|: mean ${errMean.toExponential(2)}, variance with biased batch variance ${errVarB.toExponential(2)}, ` +
    `with unbiased ${errVarU.toExponential(2)} (biased closer in ${layersBiasedCloser}/${bnLayers.length} layers); ` +
    `trainOnBatch vs reference forward: max |diff| ${twinDiff}`);
  console.log(`predictions update vs -lr * analytic gradient: max |diff| ${denseErr.toExponential(2)} (max |update| ${denseMax.toExponential(2)}); ` +
    `loss: trainOnBatch ${lossBefore}, from training-mode logits ${lossRef}, tfjs-layers categoricalCrossentropy(softmax) ${lossBuiltin}`);
  check(changedMean === total && changedVar === total, 'trainOnBatch did not update every BN moving statistic');
  check(errMean < 1e-5, `moving_mean differs from the predicted update by ${errMean}`);
  check(errVarB < 1e-5 && layersBiasedCloser === bnLayers.length, `moving_variance does not follow the biased batch variance (err ${errVarB}, unbiased ${errVarU})`);

  // Trainable weights: all moved? (Every trainable tensor should get a gradient.)
  let unchanged = [];
  for (const d of after) {
    for (const w of d.weights) {
      const a = W0.get(`${d.layer}/${w.name}`);
      if (diffNorm(a, w.data) === 0) unchanged.push(`${d.layer}/${w.name}`);
    }
  }
  check(unchanged.length === 0, `unchanged after the step: ${unchanged.join(', ')}`);

  console.log('per-tensor ||after - initial|| (||initial||):');
  for (const key of [
    'block1_conv1/kernel', 'block1_conv1_bn/gamma', 'block1_conv1_bn/beta', 'block1_conv1_bn/moving_mean', 'block1_conv1_bn/moving_variance',
    'block2_sepconv1/depthwise_kernel', 'block2_sepconv1/pointwise_kernel', 'block8_sepconv2/pointwise_kernel',
    'block14_sepconv2_bn/gamma', 'block14_sepconv2_bn/moving_variance', 'predictions/kernel', 'predictions/bias',
  ]) {
    const a = W0.get(key), b = W1.get(key);
    console.log(`  ${key.padEnd(36)} ${diffNorm(a, b).toExponential(4)}  (${norm(a).toExponential(4)})`);
  }

  // Loss after the step, training mode (after after.h5 is written: this pass
  // updates the moving statistics of `model` once more).
  const lossAfter = tf.tidy(() => {
    const logits = model.apply(x, { training: true });
    return softmaxCrossEntropyFromLogits(yOneHot, logits).mean().dataSync()[0];
  });
  console.log(`loss before the step ${lossBefore}, after (training mode, same batch) ${lossAfter}`);

  const step = {
    generator: 'tools/keras-ref/train-step.mjs',
    model: 'keras.applications.Xception(include_top=True), predictions activation linear (logits)',
    classes,
    class_names: names,
    size,
    images_per_class: opts.imagesPerClass,
    seed: opts.seed,
    batch_size: batch,
    batch_order: imagePaths,
    labels,
    preprocessing: "RGB, float32 x / 127.5 - 1 (Keras 'tf' mode); input.npy holds the batch",
    loss: 'sparse categorical cross-entropy of softmax(logits), mean over the batch (computed from logits: -mean(log_softmax(logits)[label]))',
    loss_before: lossBefore,
    loss_before_float64_from_logits: lossRef,
    loss_after_training_mode: lossAfter,
    logits_before: 'logits_before.npy: training-mode logits (BN batch statistics) with the initial weights',
    optimizer: 'SGD, no momentum, no weight decay: w -= lr * grad',
    lr: opts.lr,
    lr_float32: lr32,
    batch_normalization: {
      mode: 'training (batch statistics over batch, height, width)',
      epsilon: 1e-3,
      momentum: 0.99,
      training_normalization_variance: bnCheck.training_normalization_variance,
      moving_variance_update_variance: bnCheck.moving_variance_update,
      moving_update_formula: 'float32: moving - (moving - batch_stat) * float32(1 - 0.99)',
      moving_statistics_updated_by_trainOnBatch: changedMean === total && changedVar === total,
      tiny_layer_check: bnCheck,
    },
    dropout: 'none (Xception has no dropout)',
    augmentation: 'none',
    tfjs_version: tf.version.tfjs,
    tfjs_backend: tf.getBackend(),
    float_precision: 'float32 (tfjs CPU backend)',
    files: Object.fromEntries(files.map(f => [f, { sha256: sha256(path.join(opts.outDir, f)) }])),
  };
  fs.writeFileSync(path.join(opts.outDir, 'step.json'), JSON.stringify(step, null, 2) + '\n');
  tf.dispose([x, yOneHot]);
  console.log(`wrote ${files.length} files and step.json to ${opts.outDir}; total ${Date.now() - t0} ms`);
  if (failures.length > 0) { console.log(`${failures.length} check(s) failed`); process.exit(1); }
  console.log('all checks passed');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch(err => { console.error(err); process.exit(1); });
}
