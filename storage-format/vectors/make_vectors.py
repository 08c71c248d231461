#!/usr/bin/env python3
"""Build and check the Sluice storage-format golden vectors.

    python3 make_vectors.py           # (re)write the *.hex files and manifest.json, then check them
    python3 make_vectors.py --check   # only check the files already on disk; exit 1 on any mismatch

The script has two halves that share no code:

  * the ENCODER assembles every vector field by field from the spec (../record-batch.md, ../segments.md,
    ../checkpoints.md), with a bit-at-a-time CRC-32C, and writes annotated hex plus the manifest;
  * the DECODER reads the .hex files back from disk, parses them with `struct` and its own varint reader,
    recomputes CRC-32C with a table, and asserts that what it finds equals manifest.json.

Both CRC routines must give 0xE3069283 for b"123456789" (the standard CRC-32C check value).
Standard library only; Python 3.8 or newer.
"""

import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# =====================================================================================================
# ENCODER
# =====================================================================================================


def crc32c_bitwise(data: bytes) -> int:
    """CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def zigzag(n: int, bits: int) -> int:
    assert -(1 << (bits - 1)) <= n < (1 << (bits - 1)), "value out of range"
    return ((n << 1) ^ (n >> (bits - 1))) & ((1 << bits) - 1)


def uleb128(u: int) -> bytes:
    out = bytearray()
    while True:
        group = u & 0x7F
        u >>= 7
        if u:
            out.append(group | 0x80)
        else:
            out.append(group)
            return bytes(out)


def varint(n: int) -> bytes:
    return uleb128(zigzag(n, 32))


def varlong(n: int) -> bytes:
    return uleb128(zigzag(n, 64))


def be(n: int, width: int, signed: bool = True) -> bytes:
    return n.to_bytes(width, "big", signed=signed)


class Annotated:
    """A byte string built from pieces, each with a comment, so the hex file explains itself."""

    def __init__(self):
        self.pieces = []  # (bytes, comment)

    def add(self, data: bytes, comment: str):
        self.pieces.append((bytes(data), comment))

    def extend(self, other: "Annotated", prefix: str = ""):
        for data, comment in other.pieces:
            self.pieces.append((data, prefix + comment))

    def bytes(self) -> bytes:
        return b"".join(d for d, _ in self.pieces)

    def __len__(self):
        return len(self.bytes())

    def hex_text(self, title: str) -> str:
        lines = ["# " + line for line in title.strip().splitlines()]
        lines.append("# Format: hex digits; whitespace and '#' comments (to end of line) are ignored.")
        lines.append("# Left column in comments: byte position of the field within the file.")
        pos = 0
        for data, comment in self.pieces:
            chunks = [data[i:i + 16] for i in range(0, len(data), 16)] or [b""]
            for k, chunk in enumerate(chunks):
                hexpart = " ".join("%02x" % b for b in chunk)
                note = "# %4d  %s" % (pos, comment) if k == 0 else "#       (cont.)"
                lines.append("%-48s %s" % (hexpart, note) if hexpart else "%-48s %s" % ("", note))
                pos += len(chunk)
        return "\n".join(lines) + "\n"


def utf8(s):
    return None if s is None else s.encode("utf-8")


def encode_record(rec: dict) -> Annotated:
    """rec: offsetDelta, timestampDelta, key, value, headers=[{key, value}] (strings or None)."""
    body = Annotated()
    body.add(be(0, 1), "attributes int8 = 0")
    body.add(varlong(rec["timestampDelta"]), "timestampDelta varlong = %d" % rec["timestampDelta"])
    body.add(varint(rec["offsetDelta"]), "offsetDelta varint = %d" % rec["offsetDelta"])
    key = utf8(rec["key"])
    if key is None:
        body.add(varint(-1), "keyLength varint = -1 (null key)")
    else:
        body.add(varint(len(key)), "keyLength varint = %d" % len(key))
        body.add(key, "key = %r" % rec["key"])
    value = utf8(rec["value"])
    if value is None:
        body.add(varint(-1), "valueLength varint = -1 (null value: tombstone)")
    else:
        body.add(varint(len(value)), "valueLength varint = %d" % len(value))
        if value:
            body.add(value, "value = %r" % rec["value"])
    body.add(varint(len(rec["headers"])), "headerCount varint = %d" % len(rec["headers"]))
    for h in rec["headers"]:
        hk = utf8(h["key"])
        assert hk is not None, "header keys are never null"
        body.add(varint(len(hk)), "  headerKeyLength varint = %d" % len(hk))
        body.add(hk, "  headerKey = %r" % h["key"])
        hv = utf8(h["value"])
        if hv is None:
            body.add(varint(-1), "  headerValueLength varint = -1 (null)")
        else:
            body.add(varint(len(hv)), "  headerValueLength varint = %d" % len(hv))
            if hv:
                body.add(hv, "  headerValue = %r" % h["value"])
    rec_bytes = Annotated()
    size = len(body)
    rec_bytes.add(varint(size), "length varint = %d (bytes after this field)" % size)
    rec_bytes.extend(body)
    return rec_bytes


def encode_batch(b: dict) -> Annotated:
    """Uncompressed batch. b holds the header fields (manifest names) and records."""
    records = Annotated()
    for i, rec in enumerate(b["records"]):
        records.extend(encode_record(rec), "record[%d] " % i)
    # Everything the CRC covers: attributes .. end of batch.
    covered = Annotated()
    covered.add(be(b["attributes"], 2), "attributes int16 = 0x%04x" % b["attributes"])
    covered.add(be(b["lastOffsetDelta"], 4), "lastOffsetDelta int32 = %d" % b["lastOffsetDelta"])
    covered.add(be(b["baseTimestamp"], 8), "baseTimestamp int64 = %d" % b["baseTimestamp"])
    covered.add(be(b["maxTimestamp"], 8), "maxTimestamp int64 = %d" % b["maxTimestamp"])
    covered.add(be(b["producerId"], 8), "producerId int64 = %d" % b["producerId"])
    covered.add(be(b["producerEpoch"], 2), "producerEpoch int16 = %d" % b["producerEpoch"])
    covered.add(be(b["baseSequence"], 4), "baseSequence int32 = %d" % b["baseSequence"])
    covered.add(be(len(b["records"]), 4), "recordCount int32 = %d" % len(b["records"]))
    covered.extend(records)
    crc = crc32c_bitwise(covered.bytes())
    batch_length = 4 + 1 + 4 + len(covered)  # leader epoch + magic + crc + covered part
    out = Annotated()
    out.add(be(b["baseOffset"], 8), "baseOffset int64 = %d" % b["baseOffset"])
    out.add(be(batch_length, 4), "batchLength int32 = %d (batch size %d - 12)" % (batch_length, batch_length + 12))
    out.add(be(b["leaderEpoch"], 4), "partitionLeaderEpoch int32 = %d" % b["leaderEpoch"])
    out.add(be(2, 1), "magic int8 = 2")
    out.add(be(crc, 4, signed=False), "crc uint32 = 0x%08x (CRC-32C of bytes 21..end)" % crc)
    out.extend(covered)
    assert len(out) == 12 + batch_length
    assert len(out) >= 61
    return out, crc


def batch_manifest(name, b, crc, expect_error=None, description=""):
    recs = []
    for r in b["records"]:
        ts = b["maxTimestamp"] if b["attributes"] & 0x08 else b["baseTimestamp"] + r["timestampDelta"]
        recs.append({
            "offsetDelta": r["offsetDelta"],
            "timestampDelta": r["timestampDelta"],
            "key": r["key"],
            "value": r["value"],
            "headers": [{"key": h["key"], "value": h["value"]} for h in r["headers"]],
            "offset": b["baseOffset"] + r["offsetDelta"],
            "timestamp": ts,
        })
    return {
        "file": name,
        "kind": "batch",
        "description": description,
        "expectError": expect_error,
        "baseOffset": b["baseOffset"],
        "leaderEpoch": b["leaderEpoch"],
        "attributes": b["attributes"],
        "lastOffsetDelta": b["lastOffsetDelta"],
        "baseTimestamp": b["baseTimestamp"],
        "maxTimestamp": b["maxTimestamp"],
        "producerId": b["producerId"],
        "producerEpoch": b["producerEpoch"],
        "baseSequence": b["baseSequence"],
        "recordCount": len(b["records"]),
        "crc": crc,
        "records": recs,
    }


TS0 = 1700000000000

BATCH_SINGLE = {
    "baseOffset": 0, "leaderEpoch": 0, "attributes": 0, "lastOffsetDelta": 0,
    "baseTimestamp": TS0, "maxTimestamp": TS0,
    "producerId": -1, "producerEpoch": -1, "baseSequence": -1,
    "records": [
        {"offsetDelta": 0, "timestampDelta": 0, "key": "k1", "value": "hello", "headers": []},
    ],
}

BATCH_THREE = {
    "baseOffset": 42, "leaderEpoch": 7, "attributes": 0, "lastOffsetDelta": 2,
    "baseTimestamp": TS0, "maxTimestamp": TS0 + 5,
    "producerId": 1234, "producerEpoch": 2, "baseSequence": 10,
    "records": [
        {"offsetDelta": 0, "timestampDelta": 0, "key": None, "value": "a", "headers": []},
        {"offsetDelta": 1, "timestampDelta": 5, "key": "user-1", "value": '{"n":1}',
         "headers": [{"key": "trace", "value": "x1"}]},
        {"offsetDelta": 2, "timestampDelta": 3, "key": "user-2", "value": None,
         "headers": [{"key": "h1", "value": None}, {"key": "h2", "value": ""}]},
    ],
}

# Left by compaction: offsets 100..109 once existed, only 103 and 107 survive. The batch keeps its
# original lastOffsetDelta (9) and baseTimestamp. Timestamp type LogAppendTime: maxTimestamp is the
# broker's append time and is every record's effective timestamp.
BATCH_GAP = {
    "baseOffset": 100, "leaderEpoch": 3, "attributes": 0x0008, "lastOffsetDelta": 9,
    "baseTimestamp": TS0, "maxTimestamp": TS0 + 250,
    "producerId": -1, "producerEpoch": -1, "baseSequence": -1,
    "records": [
        {"offsetDelta": 3, "timestampDelta": 3, "key": "a", "value": "1", "headers": []},
        {"offsetDelta": 7, "timestampDelta": 7, "key": "b", "value": "2", "headers": []},
    ],
}


def encode_index(base, entries):
    out = Annotated()
    for i, (rel, pos) in enumerate(entries):
        out.add(be(rel, 4, signed=False), "entry[%d] relativeOffset uint32 = %d (offset %d)" % (i, rel, base + rel))
        out.add(be(pos, 4, signed=False), "entry[%d] position uint32 = %d" % (i, pos))
    return out


def encode_timeindex(base, entries):
    out = Annotated()
    for i, (ts, rel) in enumerate(entries):
        out.add(be(ts, 8), "entry[%d] timestamp int64 = %d" % (i, ts))
        out.add(be(rel, 4, signed=False), "entry[%d] relativeOffset uint32 = %d (offset %d)" % (i, rel, base + rel))
    return out


def encode_checkpoint(magic, fields):
    out = Annotated()
    out.add(magic.encode("ascii"), "magic = %r" % magic)
    out.add(be(1, 2, signed=False), "version uint16 = 1")
    out.add(be(0, 2, signed=False), "flags uint16 = 0")
    for name, value in fields:
        out.add(be(value, 8), "%s int64 = %d" % (name, value))
    crc = crc32c_bitwise(out.bytes())
    out.add(be(crc, 4, signed=False), "crc32c uint32 = 0x%08x (over bytes 0..<%d)" % (crc, len(out)))
    return out, crc


def build():
    """Returns [(file name, Annotated, title)] and the manifest."""
    files, manifest = [], []

    for name, spec, desc in [
        ("batch-single.hex", BATCH_SINGLE, "Uncompressed batch, one record, no producer state."),
        ("batch-three.hex", BATCH_THREE, "Uncompressed batch, three records: null key, a header, "
                                          "a tombstone with a null-valued and an empty-valued header."),
        ("batch-gap.hex", BATCH_GAP, "Uncompressed batch as left by compaction: offset deltas 3 and 7, "
                                      "lastOffsetDelta 9, LogAppendTime."),
    ]:
        enc, crc = encode_batch(spec)
        files.append((name, enc, "%s\n%s" % (name, desc)))
        manifest.append(batch_manifest(name, spec, crc, None, desc))

    # batch-bad-crc: batch-single with bit 0 of the value's first byte flipped ('h' 0x68 -> 'i' 0x69).
    enc, crc = encode_batch(BATCH_SINGLE)
    raw = bytearray(enc.bytes())
    value_pos = raw.index(b"hello")
    raw[value_pos] ^= 0x01
    bad = Annotated()
    consumed = 0
    for data, comment in enc.pieces:  # re-annotate piece by piece so the flipped byte is called out
        if consumed <= value_pos < consumed + len(data):
            data = bytes(raw[consumed:consumed + len(data)])
            comment = comment.replace("'hello'", "'iello'") + "  <-- bit 0 of byte %d flipped; stored crc no longer matches" % value_pos
        bad.add(data, comment)
        consumed += len(data)
    assert bad.bytes() == bytes(raw)
    bad_spec = dict(BATCH_SINGLE, records=[dict(BATCH_SINGLE["records"][0], value="iello")])
    desc = ("batch-single with one bit flipped in the record value (byte %d: 'h' -> 'i'). The stored crc "
            "(field `crc`) is batch-single's; a reader must fail with a CRC mismatch. `records` shows what "
            "the damaged bytes would decode to if the CRC were not checked." % value_pos)
    files.append(("batch-bad-crc.hex", bad, "batch-bad-crc.hex\n" + desc))
    m = batch_manifest("batch-bad-crc.hex", bad_spec, crc, "crc", desc)
    m["computedCrc"] = crc32c_bitwise(bytes(raw[21:]))
    m["corruptBytePosition"] = value_pos
    manifest.append(m)

    idx_entries = [(0, 0), (37, 4123), (80, 8301)]
    desc = "Sparse offset index of the segment with base offset 1000 (file 00000000000000001000.index)."
    files.append(("index.hex", encode_index(1000, idx_entries), "index.hex\n" + desc))
    manifest.append({"file": "index.hex", "kind": "offsetIndex", "description": desc, "expectError": None,
                     "baseOffset": 1000, "entries": [list(e) for e in idx_entries]})

    ti_entries = [(TS0, 0), (TS0 + 90, 37)]
    desc = "Time index of the segment with base offset 1000 (file 00000000000000001000.timeindex)."
    files.append(("timeindex.hex", encode_timeindex(1000, ti_entries), "timeindex.hex\n" + desc))
    manifest.append({"file": "timeindex.hex", "kind": "timeIndex", "description": desc, "expectError": None,
                     "baseOffset": 1000, "entries": [list(e) for e in ti_entries]})

    enc, crc = encode_checkpoint("SLRP", [("recoveryOffset", 1234), ("segmentBaseOffset", 1000), ("position", 8301)])
    desc = "recovery-point.checkpoint: recovery starts at byte 8301 of 00000000000000001000.log."
    files.append(("recovery-point.checkpoint.hex", enc, "recovery-point.checkpoint.hex\n" + desc))
    manifest.append({"file": "recovery-point.checkpoint.hex", "kind": "recoveryPoint", "description": desc,
                     "expectError": None, "magic": "SLRP", "version": 1, "flags": 0,
                     "recoveryOffset": 1234, "segmentBaseOffset": 1000, "position": 8301, "crc": crc})

    enc, crc = encode_checkpoint("SLLS", [("logStartOffset", 1000)])
    desc = "log-start-offset.checkpoint: the log starts at offset 1000."
    files.append(("log-start-offset.checkpoint.hex", enc, "log-start-offset.checkpoint.hex\n" + desc))
    manifest.append({"file": "log-start-offset.checkpoint.hex", "kind": "logStartOffset", "description": desc,
                     "expectError": None, "magic": "SLLS", "version": 1, "flags": 0,
                     "logStartOffset": 1000, "crc": crc})

    return files, {
        "comment": "Golden vectors for storage-format/*.md. Generated and checked by make_vectors.py; "
                   "see ../README.md for the field meanings.",
        "vectors": manifest,
    }


def write_all():
    files, manifest = build()
    for name, enc, title in files:
        with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
            f.write(enc.hex_text(title))
    with open(os.path.join(HERE, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
        f.write("\n")


# =====================================================================================================
# DECODER (independent of everything above)
# =====================================================================================================

_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ (0x82F63B78 * (_c & 1))
    _TABLE.append(_c)


def crc32c_table(data) -> int:
    c = 0xFFFFFFFF
    for byte in data:
        c = _TABLE[(c ^ byte) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


class Malformed(Exception):
    def __init__(self, kind, position, detail):
        super().__init__("%s at byte %d: %s" % (kind, position, detail))
        self.kind = kind


def read_hex_file(path) -> bytes:
    digits = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0]
            digits.append("".join(line.split()))
    return bytes.fromhex("".join(digits))


class Reader:
    def __init__(self, buf, pos, end):
        self.buf, self.pos, self.end = buf, pos, end

    def take(self, n):
        if n < 0 or self.pos + n > self.end:
            raise Malformed("records", self.pos, "need %d bytes, %d left" % (n, self.end - self.pos))
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def unsigned_leb(self, max_bytes, bits):
        result = 0
        start = self.pos
        for i in range(max_bytes):
            (b,) = self.take(1)
            result += (b & 0x7F) * (128 ** i)
            if b < 0x80:
                if result >= 2 ** bits:
                    raise Malformed("varint", start, "value does not fit in %d bits" % bits)
                return result
        raise Malformed("varint", start, "longer than %d bytes" % max_bytes)

    def signed(self, max_bytes, bits):
        u = self.unsigned_leb(max_bytes, bits)
        return -(u + 1) // 2 if u % 2 else u // 2  # undo ZigZag without shifts

    def vint(self):
        return self.signed(5, 32)

    def vlong(self):
        return self.signed(10, 64)

    def nullable_text(self, what):
        n = self.vint()
        if n == -1:
            return None
        if n < -1:
            raise Malformed("records", self.pos, "negative %s length %d" % (what, n))
        return self.take(n).decode("utf-8")


def decode_batch(buf):
    if len(buf) < 61:
        raise Malformed("length", 0, "shorter than the 61-byte header")
    base_offset, batch_length, epoch, magic, crc, attrs, last_delta, base_ts, max_ts, pid, pepoch, bseq, count = \
        struct.unpack_from(">qiibIhiqqqhii", buf, 0)
    if batch_length < 49:
        raise Malformed("length", 8, "batchLength %d < 49" % batch_length)
    if 12 + batch_length != len(buf):
        raise Malformed("length", 8, "batchLength %d but %d bytes follow" % (batch_length, len(buf) - 12))
    if magic != 2:
        raise Malformed("magic", 16, "magic %d" % magic)
    computed = crc32c_table(buf[21:])
    if computed != crc:
        raise Malformed("crc", 17, "stored 0x%08x computed 0x%08x" % (crc, computed))
    if attrs & 0x07 not in (0,):
        raise Malformed("codec", 21, "this checker only reads uncompressed vectors")
    if attrs & ~0x3F:
        raise Malformed("attributes", 21, "reserved bits set")
    if count < 0:
        raise Malformed("records", 57, "negative recordCount")
    r = Reader(buf, 61, len(buf))
    records, prev_delta = [], -1
    for _ in range(count):
        length = r.vint()
        rec_start = r.pos
        r.take(1)  # record attributes, unused
        ts_delta = r.vlong()
        off_delta = r.vint()
        key = r.nullable_text("key")
        value = r.nullable_text("value")
        n_headers = r.vint()
        if n_headers < 0:
            raise Malformed("records", r.pos, "negative headerCount")
        headers = []
        for _ in range(n_headers):
            hkey = r.nullable_text("header key")
            if hkey is None:
                raise Malformed("records", r.pos, "null header key")
            headers.append({"key": hkey, "value": r.nullable_text("header value")})
        if r.pos - rec_start != length:
            raise Malformed("records", rec_start, "record length %d but fields took %d" % (length, r.pos - rec_start))
        if not (prev_delta < off_delta <= last_delta):
            raise Malformed("records", rec_start, "offsetDelta %d out of order" % off_delta)
        prev_delta = off_delta
        records.append({
            "offsetDelta": off_delta, "timestampDelta": ts_delta, "key": key, "value": value, "headers": headers,
            "offset": base_offset + off_delta,
            "timestamp": max_ts if attrs & 0x08 else base_ts + ts_delta,
        })
    if r.pos != len(buf):
        raise Malformed("records", r.pos, "%d bytes left after %d records" % (len(buf) - r.pos, count))
    return {
        "baseOffset": base_offset, "leaderEpoch": epoch, "attributes": attrs, "lastOffsetDelta": last_delta,
        "baseTimestamp": base_ts, "maxTimestamp": max_ts, "producerId": pid, "producerEpoch": pepoch,
        "baseSequence": bseq, "recordCount": count, "crc": crc, "records": records,
    }


def decode_offset_index(buf):
    assert len(buf) % 8 == 0
    entries = [list(struct.unpack_from(">II", buf, i)) for i in range(0, len(buf), 8)]
    for a, b in zip(entries, entries[1:]):
        assert a[0] < b[0] and a[1] < b[1], "offset index entries must strictly increase"
    return entries


def decode_time_index(buf):
    assert len(buf) % 12 == 0
    entries = [list(struct.unpack_from(">qI", buf, i)) for i in range(0, len(buf), 12)]
    for a, b in zip(entries, entries[1:]):
        assert a[0] < b[0] and a[1] < b[1], "time index entries must strictly increase"
    return entries


def decode_checkpoint(buf, magic, names):
    size = 8 + 8 * len(names) + 4
    assert len(buf) == size, "checkpoint size %d, expected %d" % (len(buf), size)
    assert buf[:4] == magic.encode("ascii")
    version, flags = struct.unpack_from(">HH", buf, 4)
    assert version == 1 and flags == 0
    values = struct.unpack_from(">" + "q" * len(names), buf, 8)
    (crc,) = struct.unpack_from(">I", buf, size - 4)
    assert crc == crc32c_table(buf[:size - 4]), "checkpoint crc"
    out = {"magic": magic, "version": version, "flags": flags, "crc": crc}
    out.update(zip(names, values))
    return out


def check_all() -> int:
    with open(os.path.join(HERE, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    failures = 0
    for v in manifest["vectors"]:
        buf = read_hex_file(os.path.join(HERE, v["file"]))
        try:
            if v["kind"] == "batch":
                expected = {k: v[k] for k in ("baseOffset", "leaderEpoch", "attributes", "lastOffsetDelta",
                                              "baseTimestamp", "maxTimestamp", "producerId", "producerEpoch",
                                              "baseSequence", "recordCount", "crc", "records")}
                if v["expectError"] is None:
                    got = decode_batch(buf)
                else:
                    try:
                        decode_batch(buf)
                        raise AssertionError("expected error %r, decoded fine" % v["expectError"])
                    except Malformed as e:
                        assert e.kind == v["expectError"], "error %r, expected %r" % (e.kind, v["expectError"])
                    # The damage must be exactly what the manifest says: repair the byte and it decodes.
                    fixed = bytearray(buf)
                    fixed[v["corruptBytePosition"]] ^= 0x01
                    assert decode_batch(bytes(fixed))["crc"] == v["crc"]
                    assert crc32c_table(buf[21:]) == v["computedCrc"]
                    # With the CRC check skipped, the damaged bytes decode to the manifest's records.
                    patched = bytearray(buf)
                    struct.pack_into(">I", patched, 17, crc32c_table(buf[21:]))
                    got = decode_batch(bytes(patched))
                    got["crc"] = struct.unpack_from(">I", buf, 17)[0]
                assert got == expected, "decoded %r\nmanifest %r" % (got, expected)
            elif v["kind"] == "offsetIndex":
                assert decode_offset_index(buf) == v["entries"]
            elif v["kind"] == "timeIndex":
                assert decode_time_index(buf) == v["entries"]
            elif v["kind"] == "recoveryPoint":
                got = decode_checkpoint(buf, "SLRP", ["recoveryOffset", "segmentBaseOffset", "position"])
                assert all(got[k] == v[k] for k in got), (got, v)
                assert len(buf) == 36
            elif v["kind"] == "logStartOffset":
                got = decode_checkpoint(buf, "SLLS", ["logStartOffset"])
                assert all(got[k] == v[k] for k in got), (got, v)
                assert len(buf) == 20
            else:
                raise AssertionError("unknown kind %r" % v["kind"])
            print("ok    %s (%d bytes)" % (v["file"], len(buf)))
        except (AssertionError, Malformed, ValueError) as e:
            failures += 1
            print("FAIL  %s: %s" % (v["file"], e))
    print("%d passed, %d failed" % (len(manifest["vectors"]) - failures, failures))
    return failures


def self_test():
    assert crc32c_bitwise(b"123456789") == 0xE3069283
    assert crc32c_table(b"123456789") == 0xE3069283
    # Varint spot checks from the ZigZag definition, through both halves.
    for n, enc in [(0, b"\x00"), (-1, b"\x01"), (1, b"\x02"), (-2, b"\x03"), (63, b"\x7e"), (-64, b"\x7f"),
                   (64, b"\x80\x01"), (2147483647, b"\xfe\xff\xff\xff\x0f"), (-2147483648, b"\xff\xff\xff\xff\x0f")]:
        assert varint(n) == enc, (n, varint(n))
        assert Reader(enc, 0, len(enc)).vint() == n
    assert len(varlong(-(1 << 63))) == 10 and Reader(varlong(-(1 << 63)), 0, 10).vlong() == -(1 << 63)
    for bad in [b"\x80\x80\x80\x80\x80\x00", b"\xff\xff\xff\xff\x1f"]:  # too long; 33 bits
        try:
            Reader(bad, 0, len(bad)).vint()
            raise AssertionError("accepted malformed varint %r" % bad)
        except Malformed:
            pass


if __name__ == "__main__":
    self_test()
    if "--check" not in sys.argv[1:]:
        write_all()
    sys.exit(1 if check_all() else 0)
