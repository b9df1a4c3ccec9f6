#!/usr/bin/env python3
"""Writes Fashion-MNIST images as PNGs in class subfolders, for `xception train --data FOLDER`.

Standard library only (gzip, struct, zlib). Reads Debian's dataset-fashion-mnist IDX files
(apt-get install dataset-fashion-mnist: /usr/share/datasets/fashion-mnist) and writes the first
--per-class images of each chosen class (training split, or --split test) as 28x28 grayscale PNGs:

    python3 tools/examples/fashion-folder.py --classes sandal,sneaker,ankle_boot --per-class 200 OUT
    python3 tools/examples/fashion-folder.py --exclude sandal,sneaker,ankle_boot --per-class 300 OUT

    python3 tools/examples/fashion-folder.py --split test --classes sandal,ankle_boot --per-class 1 OUT

OUT/<class>/<index>.png; <index> is the image's position in the split's IDX file.
"""
import argparse, gzip, os, struct, sys, zlib

NAMES = ["t_shirt", "trouser", "pullover", "dress", "coat",
         "sandal", "shirt", "sneaker", "bag", "ankle_boot"]


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    _, dtype, ndim = struct.unpack(">HBB", data[:4])
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return shape, data[4 + 4 * ndim:]


def find(root, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(root, name)
        if os.path.exists(p):
            return p
    sys.exit(f"fashion-folder: {stem}[.gz] not found in {root} (apt-get install dataset-fashion-mnist)")


def png_gray(path, width, height, pixels):
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    raw = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--classes", help="comma-separated class names to write (default: all)")
    ap.add_argument("--exclude", help="comma-separated class names to leave out")
    ap.add_argument("--per-class", type=int, default=200)
    ap.add_argument("--source", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--split", choices=["train", "test"], default="train",
                    help="train (60,000 images) or test (t10k, 10,000 images: never seen by training)")
    a = ap.parse_args()
    want = a.classes.split(",") if a.classes else list(NAMES)
    if a.exclude:
        want = [c for c in want if c not in a.exclude.split(",")]
    bad = [c for c in want if c not in NAMES]
    if bad:
        sys.exit(f"fashion-folder: unknown class {bad}; classes: {', '.join(NAMES)}")
    prefix = "train" if a.split == "train" else "t10k"
    (n, h, w), images = read_idx(find(a.source, f"{prefix}-images-idx3-ubyte"))
    _, labels = read_idx(find(a.source, f"{prefix}-labels-idx1-ubyte"))
    count = {c: 0 for c in want}
    for c in want:
        os.makedirs(os.path.join(a.out, c), exist_ok=True)
    for i in range(n):
        c = NAMES[labels[i]]
        if c in count and count[c] < a.per_class:
            png_gray(os.path.join(a.out, c, f"{i:05d}.png"), w, h, images[i * h * w:(i + 1) * h * w])
            count[c] += 1
            if all(v >= a.per_class for v in count.values()):
                break
    print(f"{a.out}: " + ", ".join(f"{c} {count[c]}" for c in want))


if __name__ == "__main__":
    main()
