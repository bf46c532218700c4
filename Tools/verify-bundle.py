#!/usr/bin/env python3
"""An independent verifier of Stele evidence bundles and consent receipts.

Written from Specs/evidence-bundle.md, entry-format.md, merkle.md and checkpoint.md alone, with
Python's standard library and the `cryptography` package (Ed25519, PEM). It shares no code with
Stele's Swift verifier; the two must agree on every bundle.

    python3 verify-bundle.py BUNDLE_DIR_OR_TAR [--key VERIFIER_KEY] [--json]

Exit status: 0 sound, 1 findings, 2 could not run.
"""
import argparse
import base64
import binascii
import hashlib
import io
import json
import os
import re
import sys
import tarfile

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = "stele-evidence/1"
EM_DASH = "\u2014 "
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
HEADER_MEMBERS = ["body", "class", "kind", "prev", "retain_until", "seq", "source", "ts", "v"]


class CannotRun(Exception):
    pass


# --- encodings -------------------------------------------------------------------------------

def b64(text):
    """Strict RFC 4648 base64 with padding: the text must be exactly the encoding of its bytes."""
    if not isinstance(text, str):
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode() == text else None


def b64_hash(text):
    raw = b64(text)
    return raw if raw is not None and len(raw) == 32 else None


def reject_float(text):
    raise ValueError("numbers must be integers: " + text)


def unique_members(pairs):
    seen = {}
    for name, value in pairs:
        if name in seen:
            raise ValueError("duplicate member " + name)
        seen[name] = value
    return seen


def depth(value):
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def parse_json(raw):
    """The JSON subset of entry-format.md §1 (integers only, unique members, depth at most 64)."""
    try:
        value = json.loads(raw, parse_float=reject_float, parse_constant=reject_float, object_pairs_hook=unique_members)
    except RecursionError:
        raise ValueError("nested too deeply")
    if depth(value) > 64:
        raise ValueError("nested deeper than 64")
    return value


def canonical(value):
    """RFC 8785 for the JSON subset: sorted members (UTF-16 code units), minimal escapes."""
    if isinstance(value, dict):
        names = sorted(value, key=lambda n: n.encode("utf-16-be"))
        return "{" + ",".join(canonical(n) + ":" + canonical(value[n]) for n in names) + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, str):
        out = ['"']
        for ch in value:
            code = ord(ch)
            if ch == '"':
                out.append('\\"')
            elif ch == "\\":
                out.append("\\\\")
            elif ch == "\b":
                out.append("\\b")
            elif ch == "\f":
                out.append("\\f")
            elif ch == "\n":
                out.append("\\n")
            elif ch == "\r":
                out.append("\\r")
            elif ch == "\t":
                out.append("\\t")
            elif code < 0x20:
                out.append("\\u%04x" % code)
            else:
                out.append(ch)
        out.append('"')
        return "".join(out)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    raise ValueError("not in the JSON subset")


def sha256(data):
    return hashlib.sha256(data).digest()


# --- Merkle (RFC 9162) -----------------------------------------------------------------------

def leaf_hash(data):
    return sha256(b"\x00" + data)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def root_from_inclusion(leaf, index, size, proof):
    if index >= size:
        raise ValueError(f"entry {index} is not in a tree of {size} entries")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ValueError("the proof is longer than the tree needs")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("the proof is shorter than the tree needs")
    return r


def verify_consistency(old_size, old_root, new_size, new_root, proof):
    if old_size > new_size:
        raise ValueError("the old tree is larger than the new one")
    if old_size == new_size:
        if proof or old_root != new_root:
            raise ValueError("equal sizes need an empty proof and equal roots")
        return
    if old_size == 0:
        if proof or old_root != sha256(b""):
            raise ValueError("from the empty tree the proof is empty")
        return
    if not proof:
        raise ValueError("the proof is empty")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root starts the path
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ValueError("the proof is longer than the trees need")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise ValueError("the proof does not lead from the old root to the new one")


# --- keys, notes, checkpoints ----------------------------------------------------------------

def parse_verifier_key(text):
    parts = text.split("+", 2)
    if len(parts) != 3 or not parts[0] or re.search(r"\s", parts[0]) or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
        raise ValueError("not name+keyid+base64")
    typed = b64(parts[2])
    if typed is None or len(typed) != 33 or typed[0] != 1:
        raise ValueError("the key is not an Ed25519 key (type 0x01 and 32 bytes)")
    key_id = sha256(parts[0].encode() + b"\n" + typed)[:4]
    if key_id.hex() != parts[1]:
        raise ValueError("the key id does not match the name and key")
    return {"name": parts[0], "id": key_id, "public": typed[1:], "text": text}


def open_checkpoint(raw, key, origin):
    """Verifies a signed note by `key` and parses its checkpoint body (checkpoint.md)."""
    try:
        note = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the note is not UTF-8")
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise ValueError("the note holds a control character")
    split = note.rfind("\n\n")
    if split < 0:
        raise ValueError("the note has no blank line before its signatures")
    text, signatures = note[: split + 1], note[split + 2:]
    if not signatures.endswith("\n"):
        raise ValueError("the signature lines do not end in a newline")
    verified = False
    public = Ed25519PublicKey.from_public_bytes(key["public"])
    for line in signatures[:-1].split("\n"):
        if not line.startswith(EM_DASH):
            raise ValueError("a signature line does not start with an em dash")
        fields = line[len(EM_DASH):].split(" ")
        if len(fields) != 2:
            raise ValueError("a signature line is not name and signature")
        sig = b64(fields[1])
        if sig is None or len(sig) < 5:
            raise ValueError("a signature is not base64")
        if fields[0] != key["name"] or sig[:4] != key["id"]:
            continue
        try:
            public.verify(sig[4:], text.encode())
        except InvalidSignature:
            raise ValueError("the signature by the key does not verify: the text was altered or the signature forged")
        verified = True
    if not verified:
        raise ValueError(f"no signature by {key['text']}")
    lines = text.split("\n")
    if len(lines) < 4 or not re.fullmatch(r"0|[1-9][0-9]*", lines[1]):
        raise ValueError("not a checkpoint body (origin, size, root)")
    root = b64_hash(lines[2])
    if root is None:
        raise ValueError("the checkpoint root is not base64 of 32 bytes")
    if lines[0] != origin:
        raise ValueError(f"origin {lines[0]!r}, not {origin!r}")
    return {"origin": lines[0], "size": int(lines[1]), "root": root}


# --- bundle ----------------------------------------------------------------------------------

def read_bundle(path):
    if os.path.isdir(path):
        files = {}
        for base, _, names in os.walk(path):
            for name in names:
                full = os.path.join(base, name)
                with open(full, "rb") as f:
                    files[os.path.relpath(full, path).replace(os.sep, "/")] = f.read()
        return files
    if not os.path.exists(path):
        raise CannotRun(f"{path} does not exist")
    try:
        with tarfile.open(path, "r:") as archive:
            files = {}
            for member in archive.getmembers():
                if member.isdir():
                    continue
                if not member.isfile() or member.name.startswith("/") or ".." in member.name.split("/"):
                    raise CannotRun(f"the archive entry {member.name} is not a plain file inside the bundle")
                files[member.name[2:] if member.name.startswith("./") else member.name] = archive.extractfile(member).read()
            return files
    except tarfile.TarError as error:
        raise CannotRun(f"{path} is neither a bundle directory nor a tar archive: {error}")


class Report:
    def __init__(self):
        self.findings = []

    def add(self, code, file, seq, message):
        self.findings.append({"code": code, "file": file, "seq": seq, "message": message})


def parse_header(text):
    header = parse_json(text)
    if not isinstance(header, dict) or sorted(header) != HEADER_MEMBERS:
        raise ValueError("members are not exactly " + ", ".join(HEADER_MEMBERS))
    if canonical(header) != text:
        raise ValueError("not in canonical form")
    if header["v"] != 1 or not isinstance(header["seq"], int) or header["seq"] < 0:
        raise ValueError("bad v or seq")
    for name in ("class", "kind", "source"):
        if not isinstance(header[name], str) or not header[name]:
            raise ValueError(f"{name} is not a non-empty string")
    if not isinstance(header["ts"], str) or not TIME.match(header["ts"]):
        raise ValueError("ts is not a time")
    if header["retain_until"] is not None and (not isinstance(header["retain_until"], str) or not TIME.match(header["retain_until"])):
        raise ValueError("retain_until is not a time or null")
    if b64_hash(header["body"]) is None or b64_hash(header["prev"]) is None:
        raise ValueError("body or prev is not base64 of 32 bytes")
    return header


def field_digests(body):
    """name -> digest for a body record, and whether each is disclosed; raises on a bad record."""
    out = {}
    for name, field in body.items():
        if not re.fullmatch(r"[a-z][a-z0-9_.]{0,63}", name):
            raise ValueError(f"bad field name {name!r}")
        if not isinstance(field, dict):
            raise ValueError(f"field {name} is not an object")
        if sorted(field) == ["salt", "value"]:
            salt = b64(field["salt"])
            if salt is None or len(salt) != 16:
                raise ValueError(f"field {name}: the salt is not 16 bytes")
            out[name] = (sha256(salt + name.encode() + b"\x00" + canonical(field["value"]).encode()), True)
        elif sorted(field) == ["digest"]:
            digest = b64_hash(field["digest"])
            if digest is None:
                raise ValueError(f"field {name}: the digest is not 32 bytes")
            out[name] = (digest, False)
        else:
            raise ValueError(f"field {name} is neither {{salt, value}} nor {{digest}}")
    return out


def body_commitment(digests):
    """entry-format.md §2.3: SHA-256 of the field digests in ascending byte order of name."""
    return sha256(b"".join(digests[n][0] for n in sorted(digests, key=lambda n: n.encode())))


def matches_kind(kinds, kind):
    return not kinds or any(k == kind or (k.endswith(".*") and kind.startswith(k[:-1])) for k in kinds)


def verify(files, pinned):
    report = Report()
    meta = {"type": None, "origin": None, "tree_size": None, "records": 0}
    if "manifest.json" not in files:
        report.add("file_missing", "manifest.json", None, "the bundle has no manifest.json")
        return report, meta
    try:
        manifest = parse_json(files["manifest.json"])
        assert isinstance(manifest, dict) and manifest.get("format") == FORMAT
        assert manifest.get("type") in ("export", "consent-receipt")
        assert isinstance(manifest.get("origin"), str) and isinstance(manifest.get("files"), dict)
        assert isinstance(manifest.get("tree_size"), int) and manifest["tree_size"] > 0
        assert isinstance(manifest.get("query"), dict) and isinstance(manifest["query"].get("subject"), str)
        assert isinstance(manifest.get("counts"), dict)
    except (ValueError, AssertionError):
        report.add("manifest", "manifest.json", None, f"not a {FORMAT} manifest")
        return report, meta
    meta.update(type=manifest["type"], origin=manifest["origin"], tree_size=manifest["tree_size"])

    for name in sorted(manifest["files"]):
        if name not in files:
            report.add("file_missing", name, None, "listed in the manifest but missing from the bundle")
        elif hashlib.sha256(files[name]).hexdigest() != manifest["files"][name]:
            report.add("file_hash", name, None, f"expected SHA-256 {manifest['files'][name]}, found {hashlib.sha256(files[name]).hexdigest()}")
    for name in sorted(files):
        if name != "manifest.json" and name not in manifest["files"]:
            report.add("file_unlisted", name, None, "in the bundle but not listed in the manifest")

    bundle_key = None
    try:
        bundle_key = parse_verifier_key(files.get("verifier-key", b"").decode().split("\n")[0])
    except (ValueError, UnicodeDecodeError) as error:
        report.add("key", "verifier-key", None, f"not a verifier key: {error}")
    followed, pending = pinned, []
    # Pinned to the checkpoint's own signer, the rotations need no following (its checkpoint covers
    # them); pinned to an earlier key, they must lead from it to the signer.
    if pinned and (bundle_key is None or pinned["text"] != bundle_key["text"]) and "key-rotations.json" in files:
        followed, pending = follow_rotations(files["key-rotations.json"], pinned, manifest["origin"], report)
    if followed and bundle_key and followed["text"] != bundle_key["text"]:
        report.add("key", "verifier-key", None, f"expected {followed['text']} (the pinned key, followed through the bundle's key rotations), found {bundle_key['text']}")
    if bundle_key:
        try:
            pem = serialization.load_pem_public_key(files.get("public-key.pem", b""))
            raw = pem.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        except (ValueError, TypeError):
            raw = None
        if raw != bundle_key["public"]:
            report.add("key", "public-key.pem", None, "expected the public key of verifier-key, found another or none")
    key = followed or bundle_key
    if key is None:
        return report, meta
    if "checkpoint" not in files:
        report.add("file_missing", "checkpoint", None, "the bundle has no checkpoint")
        return report, meta
    try:
        checkpoint = open_checkpoint(files["checkpoint"], key, manifest["origin"])
    except ValueError as error:
        report.add("checkpoint", "checkpoint", None, f"expected a checkpoint of {manifest['origin']} signed by {key['text']}: {error}")
        return report, meta
    if checkpoint["size"] != manifest["tree_size"]:
        report.add("checkpoint", "checkpoint", None, f"expected size {manifest['tree_size']}, found {checkpoint['size']}")
    for seq, size, root, proof in pending:
        try:
            verify_consistency(size, root, checkpoint["size"], checkpoint["root"], proof)
        except ValueError as error:
            report.add("key_rotation", "key-rotations.json", seq, f"expected the log to extend the checkpoint covering the rotation: {error}")

    records = []
    for number, line in enumerate(files.get("entries.jsonl", b"").split(b"\n"), 1):
        if not line:
            continue
        try:
            record = parse_json(line)
            assert isinstance(record, dict) and isinstance(record.get("seq"), int) and record["seq"] >= 0
            assert isinstance(record.get("header"), str) and record.get("role") in ("match", "redacted", "receipt")
            assert isinstance(record.get("body"), dict) and isinstance(record.get("withheld"), list)
            assert isinstance(record.get("proof"), list) and all(isinstance(x, int) for x in record.get("explained_by", []))
            records.append(record)
        except (ValueError, AssertionError):
            report.add("manifest", "entries.jsonl", None, f"line {number} is not an entry record")
    meta["records"] = len(records)
    seqs = [r["seq"] for r in records]
    if seqs != sorted(set(seqs)):
        report.add("manifest", "entries.jsonl", None, "records are not in ascending seq order, each once")

    query = manifest["query"]
    receipts = {}
    headers = {}
    for r in records:
        try:
            headers[r["seq"]] = parse_header(r["header"])
        except ValueError:
            pass
        if r["role"] == "receipt":
            receipts[r["seq"]] = r
    cited = {r["body"].get("notice", {}).get("value") for r in records if r["role"] == "match"}
    counts = {"entries": 0, "receipts": 0, "redacted": 0, "withheld": 0}
    note_text = files["checkpoint"].decode()

    for r in records:
        seq = r["seq"]
        where = "entries.jsonl"
        header = headers.get(seq)
        if header is None:
            try:
                parse_header(r["header"])
            except ValueError as error:
                report.add("header", where, seq, f"the header is not a canonical entry header: {error}")
            continue
        if header["seq"] != seq:
            report.add("header", where, seq, f"expected the header of entry {seq}, found that of {header['seq']}")
        try:
            digests = field_digests(r["body"])
        except ValueError as error:
            report.add("body", where, seq, f"the body record is malformed: {error}")
            digests = None
        if digests is not None:
            commitment = body_commitment(digests)
            if commitment != b64_hash(header["body"]):
                report.add("body", where, seq, f"expected body commitment {header['body']}, found {base64.b64encode(commitment).decode()}")
        proof = [b64_hash(p) for p in r["proof"]]
        if None in proof:
            report.add("inclusion", where, seq, "a proof hash is not base64 of 32 bytes")
        else:
            try:
                root = root_from_inclusion(leaf_hash(r["header"].encode()), seq, checkpoint["size"], proof)
                if root != checkpoint["root"]:
                    raise ValueError("the proof leads to another root")
            except ValueError as error:
                report.add("inclusion", where, seq, f"expected a proof to the checkpoint's root: {error}")
        name = f"proofs/{seq}.tlog-proof"
        expected = "c2sp.org/tlog-proof@v1\nextra " + base64.b64encode(r["header"].encode()).decode() + f"\nindex {seq}\n" \
            + "".join(p + "\n" for p in r["proof"]) + "\n" + note_text
        if name not in files:
            report.add("tlog_proof", name, seq, "the record's proof file is missing")
        elif files[name].decode(errors="replace") != expected:
            report.add("tlog_proof", name, seq, "expected the record's header, index, proof and the bundle's checkpoint; found others")
        redacted_here = [n for n, (_, shown) in (digests or {}).items() if not shown]
        for n in r["withheld"]:
            if n not in redacted_here:
                report.add("withheld", where, seq, f"field {n} is listed as withheld but disclosed or absent")
        store_redacted = [n for n in redacted_here if n not in r["withheld"]]
        values = {n: f["value"] for n, f in r["body"].items() if isinstance(f, dict) and "value" in f}
        in_time = (query.get("since") is None or header["ts"] >= query["since"]) and \
            (query.get("until") is None or header["ts"] < query["until"]) and (query.get("at") is None or header["ts"] <= query["at"])
        if r["role"] == "match":
            problems = []
            if manifest["type"] == "consent-receipt" and header["kind"] == "notice.published":
                if values.get("notice") not in cited:
                    problems.append("a notice no consent record of the receipt cites")
            elif values.get("subject") != query["subject"]:
                problems.append(f"subject {values.get('subject', 'not disclosed')}, not {query['subject']}")
            if query.get("actor") is not None and values.get("actor") != query["actor"]:
                problems.append(f"actor {values.get('actor', 'not disclosed')}, not {query['actor']}")
            if not matches_kind(query.get("kinds", []), header["kind"]):
                problems.append(f"kind {header['kind']} not in the query's kinds")
            if not in_time:
                problems.append(f"ts {header['ts']} outside the query's time range")
            if query.get("purpose") is not None and "purpose" in values and values["purpose"] != query["purpose"]:
                problems.append(f"purpose {values['purpose']}, not {query['purpose']}")
            if problems:
                report.add("query", where, seq, "an entry that does not answer the query: " + "; ".join(problems))
        elif r["role"] == "redacted" and (not matches_kind(query.get("kinds", []), header["kind"]) or not in_time):
            report.add("query", where, seq, "a redacted entry outside the query's kinds or time range")
        if store_redacted or r["role"] == "redacted":
            if not any(covers(receipts.get(x), headers.get(x), seq) for x in r.get("explained_by", [])):
                report.add("redaction", where, seq, f"fields {store_redacted} are redacted, and no receipt of the bundle covers this entry")
        if r["role"] == "receipt" and header["kind"] not in ("ledger.pruned", "ledger.erased"):
            report.add("redaction", where, seq, f"a receipt record of kind {header['kind']}")
        if r["role"] == "match":
            counts["entries"] += 1
        elif r["role"] == "receipt":
            counts["receipts"] += 1
        counts["redacted"] += 1 if store_redacted else 0
        counts["withheld"] += len(r["withheld"])
    if counts != {k: manifest["counts"].get(k) for k in counts}:
        report.add("counts", "manifest.json", None, f"expected counts {canonical(counts)} from the records, found {canonical(manifest['counts'])}")

    if "consistency.json" in files:
        try:
            consistency = parse_json(files["consistency.json"])
            earlier = open_checkpoint(consistency["old_checkpoint"].encode(), key, manifest["origin"])
            proof = [b64_hash(p) for p in consistency["proof"]]
            if None in proof:
                raise ValueError("a proof hash is not base64 of 32 bytes")
            verify_consistency(earlier["size"], earlier["root"], checkpoint["size"], checkpoint["root"], proof)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            report.add("consistency", "consistency.json", None, f"expected the log to extend the earlier checkpoint: {error}")
    return report, meta


def follow_rotations(raw, pinned, origin, report):
    """Follows key-rotations.json from the pinned key: each rotation hands over from the key in force,
    which signed a checkpoint whose last leaf is the rotation entry. Returns the key reached and the
    consistency proofs still to check against the bundle's checkpoint."""
    where = "key-rotations.json"
    current, pending = pinned, []
    try:
        rotations = parse_json(raw)
        assert isinstance(rotations, list)
    except (ValueError, AssertionError):
        report.add("key_rotation", where, None, "expected a list of key rotations")
        return current, pending
    for item in rotations:
        try:
            seq, header_text, body = item["seq"], item["header"], item["body"]
            header = parse_header(header_text)
            digests = field_digests(body)
            inclusion = [b64_hash(p) for p in item["inclusion"]]
            consistency = [b64_hash(p) for p in item["consistency"]]
            assert None not in inclusion and None not in consistency
        except (ValueError, KeyError, TypeError, AssertionError):
            report.add("key_rotation", where, None, "a rotation lacks its seq, header, body, checkpoint or proofs")
            return current, pending
        commitment = body_commitment(digests)
        if header["seq"] != seq or header["kind"] != "ledger.key_rotated" or commitment != b64_hash(header["body"]):
            report.add("key_rotation", where, seq, "expected a ledger.key_rotated entry whose body matches its header")
            return current, pending
        values = {n: f.get("value") for n, f in body.items()}
        if values.get("previous_key") != current["text"]:
            report.add("key_rotation", where, seq, f"expected a hand-over from {current['text']}, found one from {values.get('previous_key')}")
            return current, pending
        try:
            nxt = parse_verifier_key(values.get("key") or "")
            old = open_checkpoint(item["checkpoint"].encode(), current, origin)
        except (ValueError, AttributeError) as error:
            report.add("key_rotation", where, seq, f"expected the checkpoint covering the rotation to be signed by {current['text']}: {error}")
            return current, pending
        try:
            if old["size"] != seq + 1 or root_from_inclusion(leaf_hash(header_text.encode()), seq, old["size"], inclusion) != old["root"]:
                raise ValueError("not the last leaf")
        except ValueError:
            report.add("key_rotation", where, seq, f"expected the rotation entry to be the last leaf of the checkpoint signed by {current['text']}")
            return current, pending
        pending.append((seq, old["size"], old["root"], consistency))
        current = nxt
    return current, pending


def covers(receipt, header, seq):
    if receipt is None or header is None or seq >= receipt["seq"]:
        return False
    member = {"ledger.pruned": "seqs", "ledger.erased": "erased"}.get(header["kind"])
    ranges = receipt["body"].get(member, {}).get("value") if member else None
    if not isinstance(ranges, list):
        return False
    return any(isinstance(p, list) and len(p) == 2 and all(isinstance(x, int) for x in p) and p[0] <= seq <= p[1] for p in ranges)


def main():
    parser = argparse.ArgumentParser(description="Verify a Stele evidence bundle or consent receipt offline.")
    parser.add_argument("path")
    parser.add_argument("--key", help="the log's verifier key you trust, or a file holding it")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        pinned = None
        if args.key:
            text = open(args.key).read().strip() if os.path.isfile(args.key) else args.key
            try:
                pinned = parse_verifier_key(text)
            except ValueError as error:
                raise CannotRun(f"--key is not a verifier key: {error}")
        files = read_bundle(args.path)
    except CannotRun as error:
        if args.json:
            print(json.dumps({"sound": False, "error": str(error), "findings": []}))
        else:
            print(f"verify-bundle.py: {error}", file=sys.stderr)
        return 2
    report, meta = verify(files, pinned)
    sound = not report.findings
    if args.json:
        print(json.dumps(dict(meta, sound=sound, key_pinned=pinned is not None, findings=report.findings), sort_keys=True))
    else:
        for f in report.findings:
            print(f"{f['code']}: {f['file']}{'' if f['seq'] is None else ' entry %d' % f['seq']}: {f['message']}")
        what = f"{meta['type']} of {meta['origin']}: {meta['records']} records, checkpoint of {meta['tree_size']} entries"
        print(("OK: " if sound else f"FAILED: {len(report.findings)} findings in the ") + what
              + ("" if pinned or not sound else "; signed by the bundle's own key only: pin the log's key with --key"))
    return 0 if sound else 1


if __name__ == "__main__":
    sys.exit(main())
