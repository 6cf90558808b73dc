#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target from fixtures/ (standard library only).

    python3 fuzz/seed.py            # into fuzz/corpus/<target>/ (ignored by git)

- decode:   the DMS JSON document of every record of every fixtures/events/*.json
            (each Kinesis record's base64 `data`), one file per record;
- evaluate: the same documents, plus one file per event holding all its
            documents, one per line (the target reads a batch per line);
- event:    every fixtures/events/*.json as it is (a Lambda Kinesis event);
- mapping:  fixtures/mapping.toml and functions/*/mapping.toml.

File names are the content's SHA-1, as libFuzzer names what it adds, so a
re-run writes nothing new and never duplicates an entry.
"""

import base64
import hashlib
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"


def put(target: str, data: bytes) -> None:
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / hashlib.sha1(data).hexdigest()).write_bytes(data)


def main() -> int:
    events = sorted((ROOT / "fixtures" / "events").glob("*.json"))
    if not events:
        print("seed: no fixtures/events/*.json", file=sys.stderr)
        return 1
    documents = 0
    for path in events:
        put("event", path.read_bytes())
        event = json.loads(path.read_text(encoding="utf-8"))
        batch = []
        for record in event["Records"]:
            data = base64.b64decode(record["kinesis"]["data"])
            documents += 1
            put("decode", data)
            put("evaluate", data)
            batch.append(data.rstrip(b"\n"))
        put("evaluate", b"\n".join(batch) + b"\n")
    mappings = [ROOT / "fixtures" / "mapping.toml"]
    mappings += sorted((ROOT / "functions").glob("*/mapping.toml"))
    for path in mappings:
        put("mapping", path.read_bytes())
    for target in sorted(p.name for p in CORPUS.iterdir() if p.is_dir()):
        count = sum(1 for _ in (CORPUS / target).iterdir())
        print(f"seed: fuzz/corpus/{target}: {count} files")
    print(f"seed: {documents} documents from {len(events)} events, {len(mappings)} mappings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
