"""Writes utils/hf-reference.py's weights.bin (f32, in the order of the
manifest's weights and of their parts) as a safetensors file, for kvc-run.

  python3 utils/weights-to-safetensors.py REF_DIR MANIFEST OUT.safetensors
"""
import json
import struct
import sys


def main():
    ref_dir, manifest, out = sys.argv[1:4]
    weights = json.load(open(manifest))["weights"]
    data = open(ref_dir + "/weights.bin", "rb").read()
    header, offset = {}, 0
    # A packed weight is its parts in the checkpoint (they follow each other
    # in weights.bin as they do in the packed weight).
    for w in (part for packed in weights for part in packed.get("parts", [packed])):
        n = 4
        for d in w["shape"]:
            n *= d
        header[w["name"]] = {"dtype": "F32", "shape": w["shape"],
                             "data_offsets": [offset, offset + n]}
        offset += n
    if offset != len(data):
        sys.exit("weights.bin has %d bytes, the manifest wants %d" % (len(data), offset))
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


if __name__ == "__main__":
    main()
