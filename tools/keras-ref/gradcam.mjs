// Keras reference for Grad-CAM on Xception, as Keras' "Grad-CAM class activation
// visualization" example computes it.
//
// The model and input are generate.mjs's: Xception with its seeded weights
// (generateWeights with --seed) and input_{S}.npy (mulberry32(seed + S)), so the
// C# test can load generate.mjs's .h5 and input. For each case it writes the
// heatmap: the gradient of one class's logit with respect to a layer's output,
// averaged over height and width (one weight per channel), the weighted sum of
// the layer's channels, ReLU, divided by its maximum (per image; all zeros when
// the maximum is 0). Batch norm in inference mode (moving statistics).
//
// Usage: node gradcam.mjs OUTDIR [--classes 10] [--size 71] [--batch 2] [--seed 1]
//
// Writes heatmap_{S}.npy (batch, h, w) for block14_sepconv2_act and each image's
// top class, heatmap_{S}_add_11_c3.npy for the residual sum add_11 (read by two
// layers, so its gradient is a sum) and class 3, the logits, and gradcam.json.

import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { parseReferenceArgs } from './args.mjs';
import { mulberry32, fillUniform, buildXception, describeWeights, generateWeights, applyWeights, writeNpy } from './generate.mjs';

// Runs the functional model eagerly layer by layer (model.layers is in
// topological order), in inference mode. When `replace` is given, the named
// layer's output is replaced by replace.tensor, so that tf.grad with respect to
// that tensor is the gradient with respect to the layer's output: the layers
// before it do not depend on it, its readers (all later) do.
function runLayers(model, x, replace) {
  const out = new Map();
  for (const layer of model.layers) {
    let y;
    if (layer.getClassName() === 'InputLayer') y = x;
    else {
      const ins = layer.inboundNodes[0].inboundLayers.map(l => out.get(l.name));
      y = layer.apply(ins.length === 1 ? ins[0] : ins, { training: false });
    }
    if (replace && layer.name === replace.name) y = replace.tensor;
    out.set(layer.name, y);
  }
  return out;
}

// Grad-CAM for every image of the batch. classes: one class per image, or null
// for each image's top logit. Returns { heat: Float32Array (batch*h*w), h, w, classes }.
function gradCam(model, x, layerName, classes) {
  return tf.tidy(() => {
    const acts = runLayers(model, x, null);
    const a = acts.get(layerName);
    if (!a) throw new Error(`no layer ${layerName}`);
    const logits = acts.get('predictions');
    const [batch, nClasses] = logits.shape;
    const chosen = classes ?? Array.from(tf.argMax(logits, -1).dataSync());
    const oneHot = tf.oneHot(tf.tensor1d(chosen, 'int32'), nClasses).toFloat();
    // Images are independent in inference mode, so the gradient of the sum of
    // each image's chosen logit gives every image its own gradient at once.
    const grad = tf.grad(t => tf.sum(tf.mul(runLayers(model, x, { name: layerName, tensor: t }).get('predictions'), oneHot)))(a);
    const [, h, w, c] = a.shape;
    const av = a.dataSync(), gv = grad.dataSync();
    const heat = new Float32Array(batch * h * w);
    for (let b = 0; b < batch; b++) {
      const weight = new Float64Array(c);
      for (let p = 0; p < h * w; p++)
        for (let k = 0; k < c; k++) weight[k] += gv[(b * h * w + p) * c + k];
      for (let k = 0; k < c; k++) weight[k] /= h * w;
      const map = new Float64Array(h * w);
      let max = 0;
      for (let p = 0; p < h * w; p++) {
        let s = 0;
        for (let k = 0; k < c; k++) s += weight[k] * av[(b * h * w + p) * c + k];
        map[p] = Math.max(s, 0);
        max = Math.max(max, map[p]);
      }
      for (let p = 0; p < h * w; p++) heat[b * h * w + p] = max > 0 ? map[p] / max : 0;
    }
    return { heat, h, w, classes: chosen, logits: Float32Array.from(logits.dataSync()) };
  });
}

function sha256(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

async function main() {
  const opts = parseReferenceArgs(process.argv.slice(2), 'gradcam.mjs');
  await tf.setBackend('cpu');
  await tf.ready();
  fs.mkdirSync(opts.outDir, { recursive: true });
  const t0 = Date.now();
  const S = opts.size;

  const model = buildXception(S, opts.classes);
  const desc = describeWeights(model);
  generateWeights(desc, opts.seed);
  applyWeights(model, desc);
  const input = fillUniform(mulberry32(opts.seed + S), opts.batch * S * S * 3, -1, 1);
  const x = tf.tensor(input, [opts.batch, S, S, 3], 'float32');

  // The eager layer-by-layer run must be the model itself.
  const predicted = model.predict(x, { batchSize: opts.batch });
  const eager = runLayers(model, x, null).get('predictions');
  const diff = tf.max(tf.abs(tf.sub(predicted, eager))).dataSync()[0];
  tf.dispose([predicted, eager]);
  if (!(diff < 1e-5)) throw new Error(`layer-by-layer run differs from model.predict by ${diff}`);

  const cases = [
    { file: `heatmap_${S}.npy`, layer: 'block14_sepconv2_act', classes: null },
    { file: `heatmap_${S}_add_11_c3.npy`, layer: 'add_11', classes: Array(opts.batch).fill(3) },
  ];
  const files = [`input_${S}.npy`];
  writeNpy(path.join(opts.outDir, `input_${S}.npy`), [opts.batch, S, S, 3], input);
  const results = [];
  let logits = null;
  for (const c of cases) {
    const r = gradCam(model, x, c.layer, c.classes);
    writeNpy(path.join(opts.outDir, c.file), [opts.batch, r.h, r.w], r.heat);
    files.push(c.file);
    logits ??= r.logits;
    results.push({ file: c.file, layer: c.layer, height: r.h, width: r.w, classes: r.classes, class_choice: c.classes ? 'given' : 'top logit per image' });
    console.log(`${c.layer}: ${r.h}x${r.w}, classes ${r.classes.join(',')}, heatmap[0] = ${Array.from(r.heat.slice(0, r.h * r.w)).map(v => v.toFixed(4)).join(' ')}`);
  }
  writeNpy(path.join(opts.outDir, `logits_${S}.npy`), [opts.batch, opts.classes], logits);
  files.push(`logits_${S}.npy`);

  const manifest = {
    generator: 'tools/keras-ref/gradcam.mjs',
    model: 'generate.mjs buildXception + generateWeights(seed), inference mode (BN moving statistics)',
    method: 'Grad-CAM: d logit[class] / d layer output (tf.grad), channel weight = mean over h, w; heatmap = ReLU(sum_c weight_c * activation_c) / max (0 if max is 0), per image',
    classes: opts.classes, size: S, batch: opts.batch, seed: opts.seed,
    cases: results,
    tfjs_version: tf.version.tfjs,
    files: Object.fromEntries(files.map(f => [f, { sha256: sha256(path.join(opts.outDir, f)) }])),
  };
  fs.writeFileSync(path.join(opts.outDir, 'gradcam.json'), JSON.stringify(manifest, null, 2) + '\n');
  x.dispose();
  console.log(`wrote ${files.length} files and gradcam.json to ${opts.outDir} in ${Date.now() - t0} ms`);
}

main().catch(err => { console.error(err); process.exit(1); });
