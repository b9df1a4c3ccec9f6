// Checks a directory written by generate.mjs.
//
// Usage: node verify.mjs OUTDIR
//
// - manifest.json: every file present with the recorded sha256
// - xception_c{classes}.h5 read back with h5wasm: root attributes, layer_names
//   equal to the Keras layer order, weight_names per layer, dataset shapes
// - the model rebuilt with the weights read from the .h5 reproduces logits_{S}.npy
//   for input_{S}.npy; logits finite and not all equal; probs rows sum to 1 and
//   equal softmax(logits).

import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import * as h5wasm from 'h5wasm/node';
import { buildXception, describeWeights, applyWeights } from './generate.mjs';
import { readNpy } from './npy.mjs';

let failures = 0;
function check(cond, msg) {
  if (!cond) { failures++; console.log(`FAIL ${msg}`); }
}

async function main() {
  const dir = process.argv[2];
  if (!dir) { console.error('usage: node verify.mjs OUTDIR'); process.exit(2); }
  await tf.setBackend('cpu');
  await h5wasm.ready;

  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  for (const [name, { sha256 }] of Object.entries(manifest.files)) {
    const h = crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, name))).digest('hex');
    check(h === sha256, `${name}: sha256 ${h} != manifest ${sha256}`);
  }

  const { classes, sizes, batch } = manifest;
  const expected = describeWeights(buildXception(sizes[0], classes));

  // --- HDF5 ---
  const f = new h5wasm.File(path.join(dir, `xception_c${classes}.h5`), 'r');
  const layerNames = f.attrs['layer_names'].value;
  check(JSON.stringify(layerNames) === JSON.stringify(expected.map(d => d.layer)), 'layer_names differ from the model order');
  check(f.attrs['backend'].value === 'tensorflow', 'backend attribute');
  check(f.attrs['keras_version'].value === '2.2.4', 'keras_version attribute');
  let params = 0;
  for (const d of expected) {
    const g = f.get(d.layer);
    const wn = g.attrs['weight_names'].value;
    const want = d.weights.map(w => `${d.layer}/${w.name}:0`);
    check(JSON.stringify(wn) === JSON.stringify(want), `${d.layer}: weight_names ${JSON.stringify(wn)}`);
    d.weights.forEach((w, i) => {
      const ds = f.get(`${d.layer}/${want[i]}`);
      check(ds !== null && ds.dtype === '<f', `${want[i]}: missing or not <f4`);
      check(JSON.stringify(ds.shape) === JSON.stringify(w.shape), `${want[i]}: shape ${ds.shape} != ${w.shape}`);
      w.data = ds.value;
      params += w.data.length;
    });
  }
  f.close();
  console.log(`h5: ${layerNames.length} layers, ${params} parameters; e.g. block2_sepconv1/pointwise_kernel:0 ` +
    JSON.stringify(expected.find(d => d.layer === 'block2_sepconv1').weights[1].shape));

  // --- forward pass from the .h5 weights ---
  for (const S of sizes) {
    const x = readNpy(path.join(dir, `input_${S}.npy`));
    const logits = readNpy(path.join(dir, `logits_${S}.npy`));
    const probs = readNpy(path.join(dir, `probs_${S}.npy`));
    check(JSON.stringify(x.shape) === JSON.stringify([batch, S, S, 3]), `input_${S} shape ${x.shape}`);
    check(JSON.stringify(logits.shape) === JSON.stringify([batch, classes]), `logits_${S} shape ${logits.shape}`);
    check(JSON.stringify(probs.shape) === JSON.stringify([batch, classes]), `probs_${S} shape ${probs.shape}`);
    check(x.data.every(v => v >= -1 && v < 1), `input_${S} outside [-1, 1)`);
    check(logits.data.every(Number.isFinite), `logits_${S} not finite`);
    check(new Set(logits.data).size > 1, `logits_${S} all equal`);

    const model = buildXception(S, classes);
    applyWeights(model, expected);
    const out = tf.tidy(() => model.predict(tf.tensor(x.data, x.shape)).dataSync());
    model.dispose();
    let maxDiff = 0;
    for (let i = 0; i < out.length; i++) maxDiff = Math.max(maxDiff, Math.abs(out[i] - logits.data[i]));
    check(maxDiff === 0, `logits_${S}: re-run from the .h5 differs by ${maxDiff}`);

    let worstSum = 0, worstSoftmax = 0;
    for (let b = 0; b < batch; b++) {
      const row = logits.data.slice(b * classes, (b + 1) * classes);
      const m = Math.max(...row);
      const e = Array.from(row, v => Math.exp(v - m));
      const z = e.reduce((p, c) => p + c, 0);
      let sum = 0;
      for (let c = 0; c < classes; c++) {
        const p = probs.data[b * classes + c];
        sum += p;
        worstSoftmax = Math.max(worstSoftmax, Math.abs(p - e[c] / z));
      }
      worstSum = Math.max(worstSum, Math.abs(sum - 1));
    }
    check(worstSum < 1e-5, `probs_${S}: row sums off by ${worstSum}`);
    check(worstSoftmax < 1e-6, `probs_${S}: differs from softmax(logits) by ${worstSoftmax}`);
    console.log(`size ${S}: logits re-run max |diff| ${maxDiff}, max |sum(probs)-1| ${worstSum.toExponential(2)}, ` +
      `max |probs-softmax| ${worstSoftmax.toExponential(2)}, logits[0] ${Array.from(logits.data.slice(0, classes), v => v.toFixed(4)).join(' ')}`);
  }

  if (failures > 0) { console.log(`${failures} check(s) failed`); process.exit(1); }
  console.log('all checks passed');
}

main().catch(err => { console.error(err); process.exit(1); });
