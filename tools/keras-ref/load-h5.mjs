// Loads a Keras 2 legacy HDF5 weight file (save_weights' layout) into the Keras Xception of generate.mjs
// the way Keras' own load_weights does it (keras.saving.legacy hdf5_format.load_weights_from_hdf5_group,
// by_name=False): the file's 'layer_names' that have weights are paired with the model's layers that have
// weights BY ORDER, each layer's 'weight_names' must match its weights in count, each dataset
// '<layer>/<weight_name>' must have the weight's shape, then layer.setWeights. Then the model predicts.
// Used by the C# tests to show that the .h5 files `xception export --h5` writes are loadable by Keras.
//
// Writes into OUTDIR: logits.npy ((batch, classes), model.predict in inference mode) and done.json.
//
// Usage: node load-h5.mjs OUTDIR --weights W.h5 --input X.npy [--classes 10]

import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import * as h5wasm from 'h5wasm/node';
import { buildXception, writeNpy } from './generate.mjs';
import { readNpy } from './npy.mjs';

function parseArgs(argv) {
  const opts = { outDir: null, weights: null, input: null, classes: 10 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`missing value after ${a}`);
      return argv[++i];
    };
    if (a === '--weights') opts.weights = next();
    else if (a === '--input') opts.input = next();
    else if (a === '--classes') opts.classes = parseInt(next(), 10);
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else if (opts.outDir === null) opts.outDir = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  if (!opts.outDir || !opts.weights || !opts.input) {
    console.error('usage: node load-h5.mjs OUTDIR --weights W.h5 --input X.npy [--classes 10]');
    process.exit(2);
  }
  return opts;
}

const strings = (attr) => [].concat(attr?.value ?? []).map(String);

function loadWeights(model, file) {
  const f = new h5wasm.File(file, 'r');
  try {
    const layers = model.layers.filter(l => l.weights.length > 0);
    const names = strings(f.attrs['layer_names']).filter(n => strings(f.get(n).attrs['weight_names']).length > 0);
    if (names.length !== layers.length) {
      throw new Error(`the file has ${names.length} layers with weights, the model ${layers.length}`);
    }
    names.forEach((name, k) => {
      const g = f.get(name);
      const weightNames = strings(g.attrs['weight_names']);
      const layer = layers[k];
      if (weightNames.length !== layer.weights.length) {
        throw new Error(`layer #${k} (${layer.name} in the model, ${name} in the file): ${weightNames.length} weights, expected ${layer.weights.length}`);
      }
      const values = weightNames.map((wn, i) => {
        const ds = g.get(wn);
        const want = layer.weights[i].shape;
        if (!ds || JSON.stringify(ds.shape) !== JSON.stringify(want)) {
          throw new Error(`${name}/${wn}: shape ${ds?.shape}, expected ${want}`);
        }
        return tf.tensor(ds.value, ds.shape, 'float32');
      });
      layer.setWeights(values);
      values.forEach(t => t.dispose());
    });
    return names.length;
  } finally {
    f.close();
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  await tf.setBackend('cpu');
  await h5wasm.ready;
  const x = readNpy(opts.input);
  const model = buildXception(x.shape[1], opts.classes);
  const layers = loadWeights(model, opts.weights);
  const logits = tf.tidy(() => model.predict(tf.tensor(x.data, x.shape)).dataSync());
  fs.mkdirSync(opts.outDir, { recursive: true });
  writeNpy(path.join(opts.outDir, 'logits.npy'), [x.shape[0], opts.classes], logits);
  fs.writeFileSync(path.join(opts.outDir, 'done.json'), JSON.stringify({ weights: opts.weights, layers }, null, 2));
  console.log(`loaded ${layers} layers from ${opts.weights}; logits (${x.shape[0]}, ${opts.classes})`);
}

main().catch(err => { console.error(err); process.exit(1); });
