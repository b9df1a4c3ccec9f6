// Keras reference data for image embeddings (transfer learning): the pooled
// block14 activation of keras.applications.Xception(include_top=False,
// pooling='avg' | 'max'), with the seeded weights of generate.mjs.
//
// Writes into OUTDIR:
//   xception_notop.h5       the weights of generate.mjs (same seed and class
//                           count) without the 'predictions' layer: the
//                           layout of Keras' _notop files
//   input_{S}.npy           the input of generate.mjs for size S (identical bytes)
//   features_avg_{S}.npy    (batch, 2048) global average of block14_sepconv2_act
//   features_max_{S}.npy    (batch, 2048) global maximum of block14_sepconv2_act
//   manifest.json           arguments, tfjs version, sha256 of every file
//
// Usage: node features.mjs OUTDIR [--size 71] [--batch 2] [--seed 1] [--classes 10]

import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { parseReferenceArgs } from './args.mjs';
import {
  mulberry32, fillUniform, buildXception, describeWeights, generateWeights, applyWeights, writeH5, writeNpy,
} from './generate.mjs';

async function main() {
  const opts = parseReferenceArgs(process.argv.slice(2), 'features.mjs');
  await tf.setBackend('cpu');
  await tf.ready();
  fs.mkdirSync(opts.outDir, { recursive: true });
  const t0 = Date.now();

  // The weights are drawn for the full model (with 'predictions') so that the
  // random stream, and so every other weight, is the one generate.mjs draws;
  // the classifier is then left out of the file.
  const model = buildXception(opts.size, opts.classes);
  const desc = describeWeights(model);
  generateWeights(desc, opts.seed);
  applyWeights(model, desc);
  const files = ['xception_notop.h5'];
  await writeH5(path.join(opts.outDir, files[0]), desc.filter(d => d.layer !== 'predictions' && d.layer !== 'avg_pool'));

  // include_top=False stops at block14_sepconv2_act; pooling='avg'/'max' adds
  // Keras' GlobalAveragePooling2D / GlobalMaxPooling2D there.
  const trunk = tf.model({ inputs: model.inputs, outputs: model.getLayer('block14_sepconv2_act').output });
  const rng = mulberry32(opts.seed + opts.size);
  const shape = [opts.batch, opts.size, opts.size, 3];
  const input = fillUniform(rng, shape.reduce((p, c) => p * c, 1), -1, 1);
  const x = tf.tensor(input, shape, 'float32');
  const act = trunk.predict(x, { batchSize: opts.batch });
  const S = opts.size;
  writeNpy(path.join(opts.outDir, `input_${S}.npy`), shape, input);
  files.push(`input_${S}.npy`);
  const channels = act.shape[3];
  for (const [kind, layer] of [['avg', tf.layers.globalAveragePooling2d({})], ['max', tf.layers.globalMaxPooling2d({})]]) {
    const y = layer.apply(act);
    const values = y.dataSync();
    for (const v of values) if (!Number.isFinite(v)) throw new Error(`${kind}: non-finite feature`);
    writeNpy(path.join(opts.outDir, `features_${kind}_${S}.npy`), [opts.batch, channels], values);
    files.push(`features_${kind}_${S}.npy`);
    console.log(`${kind}: features[0][0..3] = ${Array.from(values.slice(0, 4)).map(v => v.toFixed(5)).join(' ')}`);
    y.dispose();
  }
  tf.dispose([x, act]);
  model.dispose();

  const manifest = {
    generator: 'tools/keras-ref/features.mjs',
    model: "keras.applications.Xception(include_top=False, pooling='avg' | 'max'), weights of generate.mjs",
    size: S, batch: opts.batch, seed: opts.seed, classes_drawn: opts.classes, channels,
    tfjs_version: tf.version.tfjs,
    tfjs_backend: tf.getBackend(),
    files: Object.fromEntries(files.map(f => [f, { sha256: crypto.createHash('sha256').update(fs.readFileSync(path.join(opts.outDir, f))).digest('hex') }])),
  };
  fs.writeFileSync(path.join(opts.outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  console.log(`wrote ${files.length} files and manifest.json in ${Date.now() - t0} ms`);
}

main().catch(err => { console.error(err); process.exit(1); });
