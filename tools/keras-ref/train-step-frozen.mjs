// Keras reference data for one SGD step of Xception with the base frozen.
//
// Same dataset, weights and step as train-step.mjs, except that every layer but
// `predictions` has trainable = false, which in Keras 2 (TF 2.x) means:
//   - only predictions/kernel and predictions/bias receive an update, and
//   - a BatchNormalization layer with trainable = false runs in inference mode
//     (moving statistics normalise, and are not updated) even inside fit().
// tfjs-layers only implements the first half: its BatchNormalization follows
// the `training` flag alone and would still normalise with batch statistics and
// update the moving statistics inside trainOnBatch. So the step is taken here
// with tfjs' own pieces, but spelled out: the forward pass with training:false
// (Xception has no dropout, so with every BN frozen that is exactly Keras'
// forward pass), the gradient of the loss with respect to the model's trainable
// weights (tf.variableGrads over model.trainableWeights, i.e. predictions only)
// and tf.train.sgd's applyGradients. A separate written-out check compares the
// predictions update with -lr * the analytic gradient in float64.
//
// A script of its own: each reference's cached data is keyed by its script's hash.
//
// Writes OUTDIR/images/<class>/<i>.png, input.npy, initial.h5, after.h5,
// logits_before.npy (inference-mode logits) and step.json.
//
// Usage: node train-step-frozen.mjs OUTDIR [--classes 3] [--size 71] [--images-per-class 2] [--lr 0.1] [--seed 2]

import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { buildXception, describeWeights, generateWeights, applyWeights, writeH5, writeNpy } from './generate.mjs';
import { classNames, makeImages, encodePng, decodePng, preprocess, parseStepArgs, readWeights, weightMap, sha256 } from './train-step.mjs';

async function main() {
  const opts = parseStepArgs(process.argv.slice(2), 'train-step-frozen.mjs', { stockKernels: false });
  await tf.setBackend('cpu');
  await tf.ready();
  const t0 = Date.now();
  const { size, classes } = opts;
  fs.mkdirSync(opts.outDir, { recursive: true });
  const files = [];

  // --- dataset: the same generator as train-step.mjs, written and read back as PNG ---
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
  const batch = images.length;
  const inputData = new Float32Array(batch * size * size * 3);
  imagePaths.forEach((rel, b) => {
    const png = decodePng(fs.readFileSync(path.join(opts.outDir, rel)));
    inputData.set(preprocess(png.rgb), b * size * size * 3);
  });
  const labels = images.map(img => img.cls);
  writeNpy(path.join(opts.outDir, 'input.npy'), [batch, size, size, 3], inputData);
  files.push('input.npy');

  // --- model and initial weights ---
  const model = buildXception(size, classes);
  const initial = describeWeights(model);
  generateWeights(initial, opts.seed);
  applyWeights(model, initial);
  await writeH5(path.join(opts.outDir, 'initial.h5'), initial);
  files.push('initial.h5');

  // Freeze the base the Keras way: trainable = false on every layer but the classifier.
  for (const layer of model.layers) if (layer.name !== 'predictions') layer.trainable = false;
  const trainable = model.trainableWeights;
  const trainableNames = trainable.map(w => w.originalName ?? w.name);
  console.log(`trainable after freezing: ${trainableNames.join(', ')}`);
  if (trainable.length !== 2) throw new Error(`expected predictions/kernel and predictions/bias trainable, got ${trainableNames}`);

  const x = tf.tensor(inputData, [batch, size, size, 3], 'float32');
  const yOneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), classes).toFloat();

  // Features and logits in inference mode (what the frozen Keras model computes).
  const probe = tf.model({ inputs: model.inputs, outputs: [model.outputs[0], model.getLayer('avg_pool').output] });
  const [logitsT, featT] = probe.apply(x, { training: false });
  const logitsBefore = Float32Array.from(logitsT.dataSync());
  const features = Float32Array.from(featT.dataSync());
  tf.dispose([logitsT, featT]);

  // --- the step: loss = mean softmax cross-entropy of the logits; SGD on the trainable weights ---
  const lossFn = () => tf.tidy(() => {
    const logits = model.apply(x, { training: false });
    return tf.neg(tf.sum(tf.mul(yOneHot, tf.logSoftmax(logits, -1)), -1)).mean();
  });
  const t1 = Date.now();
  const { value, grads } = tf.variableGrads(lossFn, trainable.map(w => w.val));
  const lossBefore = value.dataSync()[0];
  tf.train.sgd(opts.lr).applyGradients(grads);
  tf.dispose([value, ...Object.values(grads)]);
  console.log(`frozen-base SGD step (inference-mode forward + backward to predictions): ${Date.now() - t1} ms, loss ${lossBefore}`);

  const after = readWeights(model);
  await writeH5(path.join(opts.outDir, 'after.h5'), after);
  files.push('after.h5');
  writeNpy(path.join(opts.outDir, 'logits_before.npy'), [batch, classes], logitsBefore);
  files.push('logits_before.npy');

  // --- checks ---
  const failures = [];
  const check = (cond, msg) => { if (!cond) { failures.push(msg); console.log(`FAIL ${msg}`); } };
  const W0 = weightMap(initial), W1 = weightMap(after);

  // Everything but the classifier, BN moving statistics included, keeps its bits.
  let frozenTensors = 0, moved = [];
  for (const [key, a] of W0) {
    if (key.startsWith('predictions/')) continue;
    frozenTensors++;
    const b = W1.get(key);
    if (!a.every((v, i) => Object.is(v, b[i]))) moved.push(key);
  }
  check(moved.length === 0, `frozen tensors changed: ${moved.join(', ')}`);

  // The classifier update against -lr * analytic gradient (float64).
  let lossRef = 0;
  const dLogits = new Float64Array(batch * classes);
  for (let b = 0; b < batch; b++) {
    const row = Array.from(logitsBefore.subarray(b * classes, (b + 1) * classes));
    const mx = Math.max(...row);
    const e = row.map(v => Math.exp(v - mx));
    const z = e.reduce((p, c) => p + c, 0);
    lossRef += -(row[labels[b]] - mx - Math.log(z)) / batch;
    for (let c = 0; c < classes; c++) dLogits[b * classes + c] = (e[c] / z - (c === labels[b] ? 1 : 0)) / batch;
  }
  check(Math.abs(lossBefore - lossRef) < 1e-5, `loss ${lossBefore} != float64 loss of the inference-mode logits ${lossRef}`);
  const lr32 = Math.fround(opts.lr);
  const nFeat = features.length / batch;
  let num = 0, den = 0;
  {
    const k0 = W0.get('predictions/kernel'), k1 = W1.get('predictions/kernel');
    const b0 = W0.get('predictions/bias'), b1 = W1.get('predictions/bias');
    for (let c = 0; c < classes; c++) {
      let g = 0;
      for (let b = 0; b < batch; b++) g += dLogits[b * classes + c];
      const d = (b1[c] - b0[c]) + lr32 * g; num += d * d; den += (lr32 * g) ** 2;
      for (let i = 0; i < nFeat; i++) {
        let gk = 0;
        for (let b = 0; b < batch; b++) gk += features[b * nFeat + i] * dLogits[b * classes + c];
        const dk = (k1[i * classes + c] - k0[i * classes + c]) + lr32 * gk; num += dk * dk; den += (lr32 * gk) ** 2;
      }
    }
  }
  const denseRel = Math.sqrt(num / den);
  console.log(`${frozenTensors} frozen tensors bit-identical: ${moved.length === 0}; predictions update vs -lr * analytic gradient: relative ${denseRel.toExponential(2)}`);
  check(denseRel < 1e-4, `predictions update differs from -lr * analytic gradient by ${denseRel} (relative)`);

  const step = {
    generator: 'tools/keras-ref/train-step-frozen.mjs',
    model: 'keras.applications.Xception(include_top=True), predictions activation linear (logits); every layer but predictions trainable = false',
    classes, class_names: names, size, images_per_class: opts.imagesPerClass, seed: opts.seed,
    batch_size: batch, batch_order: imagePaths, labels,
    preprocessing: "RGB, float32 x / 127.5 - 1 (Keras 'tf' mode); input.npy holds the batch",
    loss: 'mean over the batch of -log_softmax(logits)[label]',
    loss_before: lossBefore,
    loss_before_float64_from_logits: lossRef,
    optimizer: 'SGD, no momentum, no weight decay: w -= lr * grad, on predictions/kernel and predictions/bias only',
    lr: opts.lr,
    batch_normalization: 'inference mode (moving statistics), not updated: Keras 2 semantics of trainable = false',
    trainable_weights: trainableNames,
    frozen_tensors: frozenTensors,
    predictions_update_relative_error_vs_analytic: denseRel,
    tfjs_version: tf.version.tfjs,
    files: Object.fromEntries(files.map(f => [f, { sha256: sha256(path.join(opts.outDir, f)) }])),
  };
  fs.writeFileSync(path.join(opts.outDir, 'step.json'), JSON.stringify(step, null, 2) + '\n');
  tf.dispose([x, yOneHot]);
  console.log(`wrote ${files.length} files and step.json to ${opts.outDir}; total ${Date.now() - t0} ms`);
  if (failures.length > 0) { console.log(`${failures.length} check(s) failed`); process.exit(1); }
  console.log('all checks passed');
}

main().catch(err => { console.error(err); process.exit(1); });
