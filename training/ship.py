"""Ship a trained checkpoint as a built-in model (half precision, inside the package).

    python -m training.ship runs/lite/best.pt default
    python -m training.ship runs/lite/best.pt default --force

Refuses to replace a shipped model whose recorded val accuracy is higher, so retraining never
bloats the history with a worse file (``--force`` overrides). Prints the new file's size and
metrics as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys

from fer_stream.models import BUILTIN, checkpoint

METRIC = {"default": "val_accuracy", "ckplus": "ckplus_10fold_mean"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", help="checkpoint to ship (training output best.pt)")
    ap.add_argument("name", choices=sorted(BUILTIN))
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args(argv)
    new = checkpoint.load(a.weights)
    dest = checkpoint.builtin_path(a.name)
    key = METRIC[a.name]
    if dest.is_file() and not a.force:
        old = checkpoint.load(dest)
        old_v, new_v = old.meta.get("metrics", {}).get(key), new.meta.get("metrics", {}).get(key)
        if old_v is not None and (new_v is None or new_v <= old_v):
            print(
                f"not shipping: {a.name} has {key}={old_v}, candidate {new_v} (use --force)", file=sys.stderr
            )
            return 1
    checkpoint.save(dest, new.build(), new.meta, half=True)
    print(
        json.dumps(
            {
                "shipped": a.name,
                "file": str(dest),
                "bytes": dest.stat().st_size,
                "version": new.version,
                "metrics": new.meta.get("metrics", {}),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
