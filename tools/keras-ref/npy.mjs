// NumPy .npy reading (format 1.0, '<f4', C order: what generate.mjs and the C# tests write), shared by
// verify.mjs and load-h5.mjs.

import fs from 'node:fs';

export function readNpy(file) {
  const b = fs.readFileSync(file);
  if (b.toString('latin1', 0, 6) !== '\x93NUMPY' || b[6] !== 1 || b[7] !== 0) throw new Error(`${file}: not npy 1.0`);
  const hl = b.readUInt16LE(8);
  const header = b.toString('latin1', 10, 10 + hl);
  if (!header.includes("'descr': '<f4'") || !header.includes("'fortran_order': False")) throw new Error(`${file}: not <f4 C order`);
  const shape = header.match(/'shape': \(([^)]*)\)/)[1].split(',').map(s => s.trim()).filter(s => s).map(Number);
  const n = shape.reduce((p, c) => p * c, 1);
  if (b.length !== 10 + hl + 4 * n) throw new Error(`${file}: size does not match shape`);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = b.readFloatLE(10 + hl + 4 * i);
  return { shape, data };
}
