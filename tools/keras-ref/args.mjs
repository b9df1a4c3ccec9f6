// The arguments features.mjs and gradcam.mjs share: OUTDIR and the seeded model's
// size, batch, seed and class count (the same meaning as in generate.mjs).

export function parseReferenceArgs(argv, script) {
  const opts = { outDir: null, classes: 10, size: 71, batch: 2, seed: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const int = () => {
      const s = argv[++i];
      if (s === undefined || !/^\d+$/.test(s)) throw new Error(`${a} needs a non-negative integer, got '${s}'`);
      return parseInt(s, 10);
    };
    if (a === '--classes') opts.classes = int();
    else if (a === '--size') opts.size = int();
    else if (a === '--batch') opts.batch = int();
    else if (a === '--seed') opts.seed = int();
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else if (opts.outDir === null) opts.outDir = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  if (opts.outDir === null) {
    console.error(`usage: node ${script} OUTDIR [--classes 10] [--size 71] [--batch 2] [--seed 1]`);
    process.exit(2);
  }
  if (opts.size < 71) throw new Error('--size: Xception needs inputs of at least 71x71');
  if (opts.batch < 1) throw new Error('--batch must be >= 1');
  return opts;
}
