#!/usr/bin/python3
"""Independent decoder/verifier for the coldarchive archive format, versions 1 and 2, written from
docs/FORMAT.md alone (every § below is a FORMAT.md section; it builds on decode_v1.py, written the same way,
and no coldarchive code was read). Needs Debian's python3 with python3-nacl and python3-zstandard. It parses
the tar stream itself (ustar headers, pax records as bytes, GNU sparse 1.0), so names are bytes and every
offset is exact. Where FORMAT.md left something open, Tests/Interop/SPEC_GAPS_v2.md says what is assumed.

  decode.py --check VECTORS_DIR                          verify, decrypt and compare every vector-vN.car there
  decode.py --verify ARCHIVE --trust SIGNING_PUB         the keyless check of §11
  decode.py --extract ARCHIVE --keyring KEYDIR --to DIR  verify (§11, §12), then unpack the tar stream
  decode.py --extract-chain ARCHIVE --keyring KEYDIR --to DIR   the same through a chain of archives (§20)
  decode.py --check-parity ARCHIVE --trust SIGNING_PUB   check ARCHIVE.parity (§21): every parity column recomputed

--check opens each vector with every check of §§11-12, compares it with its .listing.json and .summary.json,
reads each v2 entry from its tar_offset alone, and then shows that altered copies are refused: flipped bits,
and plaintexts changed and re-sealed with the test keyring (which holds the secret keys). It also builds a
synthetic v2 archive (incremental header, deleted entries, GNU sparse, shrunk file, non-UTF-8 names, …),
extracts it, and has GNU tar read the same tar stream. Output: PASS/FAIL/SKIP lines, then "N passed, N failed".

--extract writes names as the manifest's bytes, never follows a symlink (each path is opened component by
component with O_NOFOLLOW), never replaces anything, and sets modes and times (ns); run as root it also sets
owners (numeric uid/gid). Extended attributes and ACLs (as system.posix_acl_* xattrs) are applied where the
file system takes them. Whatever could not be applied, each deleted entry, and every file flagged
changed_while_read or shrank (cut to read_size) is reported by name. Exit codes: 0 good, 1 refused, 2 I/O error.
"""
import argparse, base64, datetime, glob, hashlib, hmac, json, os, re, struct, sys, unicodedata
import nacl.bindings as sodium, nacl.exceptions, nacl.signing, zstandard

MAX_FILE = 1 << 30                       # archives are read whole: refuse bigger ones
TYPES = {1: "file", 2: "directory", 3: "symlink", 4: "hardlink", 5: "deleted"}
TAR_TYPES = {b"0": "file", b"5": "directory", b"2": "symlink", b"1": "hardlink"}     # §10: and "x", nothing else
# §5: the known critical fields and their sizes (None: variable); 1-7 are required in both versions
FIXED = {1: 2, 2: 16, 3: 8, 4: 4, 5: 16, 6: 32, 7: 32}
FIXED_V2 = {0x10: None, 0x11: 8, 0x12: None, 0x13: 32, 0x14: 1, 0x15: 32, 0x16: 8}
ACL_TAGS = {1: "user", 2: "user", 4: "group", 8: "group", 16: "mask", 32: "other"}   # §8 ACL record tags
DCTX = zstandard.ZstdDecompressor(max_window_size=1 << 25)  # §8: refuse windows over 2^25 bytes
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

class FormatError(Exception):
    pass

def need(cond, msg):
    if not cond:
        raise FormatError(msg)

def b2(data, size=32, key=b""):          # §1: BLAKE2b-256, or BLAKE2b-128 (its own function); keyed if key
    return hashlib.blake2b(data, digest_size=size, key=key).digest()

def u(fmt, buf, off=0):                  # §1: little-endian integers
    return struct.unpack_from("<" + fmt, buf, off)

def text(raw, what, limit=4096):         # §5: valid UTF-8 without NUL
    need(len(raw) <= limit and b"\0" not in raw, f"{what}: over {limit} bytes or holds NUL")
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(f"{what}: not valid UTF-8") from None

def esc(name):
    """§18: a name (bytes) escaped for display; the exact bytes can be recovered from it."""
    out, i, s = [], 0, bytes(name)
    simple = {0x5c: "\\\\", 0x0a: "\\n", 0x0d: "\\r", 0x09: "\\t", 0x07: "\\a", 0x08: "\\b", 0x0c: "\\f", 0x0b: "\\v"}
    while i < len(s):
        c = s[i]
        if c in simple:
            out.append(simple[c]); i += 1; continue
        n = 1 if c < 0x80 else 2 if 0xc2 <= c <= 0xdf else 3 if 0xe0 <= c <= 0xef else 4 if 0xf0 <= c <= 0xf4 else 0
        try:
            ch = s[i:i + n].decode("utf-8") if n else None
        except UnicodeDecodeError:
            ch = None
        if ch is None:
            out.append(f"\\x{c:02x}"); i += 1; continue
        o = ord(ch)
        if o < 0x20 or 0x7f <= o <= 0x9f or 0x202a <= o <= 0x202e or 0x2066 <= o <= 0x2069:
            out.append("".join(f"\\{b:03o}" for b in s[i:i + n]))
        else:
            out.append(ch)
        i += n
    return "".join(out)

# ---------------------------------------------------------------------------------------------------------
# §11: verifying without a key

def verify(buf, trusted_pk, ok=lambda msg: None):
    """§11 steps 1-6 on the whole file. Returns the parsed archive (a namespace) or raises FormatError."""
    buf, a = bytes(buf), argparse.Namespace(notes=[])   # notes: departures from conventions that are not MUSTs
    need(len(buf) >= 16 + 56, "§3: file shorter than a prelude and a footer")
    f = buf[-56:]
    # §4 order of checks: the version, in the prelude and in the footer, before any other field
    need(buf[:8] == b"\x89CAR\r\n\x1a\n", "§4 prelude: bad magic")
    a.version, = u("H", buf, 8)
    need(a.version in (1, 2), f"§4 prelude: format_version {a.version} is not implemented")
    need(f[:8] == b"CAFOOTR1", "§9 footer: bad footer_magic")
    need(u("H", f, 8)[0] in (1, 2), f"§9 footer: format_version {u('H', f, 8)[0]} is not implemented")
    need(u("H", f, 8)[0] == a.version, "§4, §9: the footer's format_version differs from the prelude's")
    need(hmac.compare_digest(f[40:], b2(f[:40], 16)), "§9 footer: footer_checksum mismatch")
    need(f[10:16] == bytes(6), "§9 footer: reserved bytes set")
    a.payload_offset, a.trailer_offset, a.trailer_length = u("3Q", f, 16)
    need(a.trailer_offset + a.trailer_length + 56 == len(buf), "§3: file_size != trailer_offset + trailer_length + 56")
    ok(f"§11.1 footer: magic, checksum, version {a.version}, file size")
    flags, hlen = u("HI", buf, 10)
    need(flags == 0, "§4 prelude: prelude_flags != 0")
    need(1 <= hlen <= 1 << 20 and 16 + hlen + 4 <= len(buf), "§4 prelude: header_length out of range")
    parse_header(a, buf[16:16 + hlen])
    a.header_digest = b2(buf[:16 + hlen])
    ok("§11.2 prelude and §5 header field rules" + (" (v2 fields too)" if a.version == 2 else ""))
    r = 16 + hlen                        # §6: the recipient block
    rlen, = u("I", buf, r)
    need(85 <= rlen <= 1 << 20 and r + 4 + rlen <= len(buf), "§6: recipients_length out of range")
    blk = buf[r:r + 4 + rlen]
    need(hmac.compare_digest(blk[-32:], b2(blk[:-32])), "§6: recipients_checksum mismatch")
    count, = u("H", blk, 4)
    need(1 <= count <= 4096, "§6: recipient_count out of range")
    p, end, a.recipients = 6, len(blk) - 64, []
    for _ in range(count):
        need(p + 19 <= end and p + 19 + u("H", blk, p + 17)[0] <= end, "§6: recipient entries run into header_mac")
        rtype, key_id, wlen = blk[p], blk[p + 1:p + 17], u("H", blk, p + 17)[0]
        need(rtype != 1 or wlen == 80, "§6: a type-1 wrapped_key is not 80 bytes")
        a.recipients.append((rtype, key_id, blk[p + 19:p + 19 + wlen]))
        p += 19 + wlen
    need(p == end, "§6: bytes between the last recipient entry and header_mac")
    a.mac_input, a.header_mac = a.header_digest + blk[4:p], blk[p:p + 32]   # §7: count || entries as stored
    need(a.payload_offset == r + 4 + rlen, "§3: payload_offset != 16 + header_length + 4 + recipients_length")
    ok("§11.2 recipient block layout and recipients_checksum, §3 payload_offset")
    T = a.trailer_offset                 # §11.3, §9: the trailer
    need(a.payload_offset <= T and a.trailer_length >= 96 + 80 + 64, "§9: trailer offset or length out of range")
    t = buf[T:T + a.trailer_length]
    need(t[:8] == b"CATRAILR", "§9 trailer: bad trailer_magic")
    need(t[8:40] == a.header_digest, "§9 trailer: header_digest != BLAKE2b-256(prelude || header)")
    a.N, a.mfc, a.tar_bytes, a.manifest_bytes, a.entry_count, a.content_bytes, a.payload_bytes = u("7Q", t, 40)
    need(2 <= a.N <= 1 << 32 and 1 <= a.mfc < a.N, "§9: chunk_count or manifest_first_chunk out of range")
    need(a.trailer_length == 96 + 40 * a.N + 64, "§9: trailer_length != 96 + 40·N + 64")
    need(a.payload_bytes == T - a.payload_offset, "§9: payload_bytes != trailer_offset - payload_offset")
    ok("§11.3 trailer: magic, header_digest, trailer_length, payload_bytes")
    n, off = a.chunk_raw_size, a.payload_offset    # §11.4: the chunk table; ZSTD_compressBound() from zstd.h
    bound, a.chunks = n + (n >> 8) + (((128 << 10) - n) >> 11 if n < 128 << 10 else 0) + 16, []
    for i in range(a.N):
        sl, rl = u("II", t, 96 + 40 * i)
        need(17 <= sl <= bound and 1 <= rl <= n, f"§9: chunk {i}: sealed_len or raw_len out of bounds")
        need(rl == n or i in (a.mfc - 1, a.N - 1), f"§9: chunk {i} is short but not the last of its section")
        a.chunks.append((off, sl, rl, t[104 + 40 * i:136 + 40 * i]))
        off += sl
    need(off - a.payload_offset == a.payload_bytes, "§9: Σ sealed_len != payload_bytes")
    need(sum(c[2] for c in a.chunks[:a.mfc]) == a.tar_bytes, "§9: Σ raw_len of the data chunks != tar_bytes")
    need(sum(c[2] for c in a.chunks[a.mfc:]) == a.manifest_bytes, "§9: Σ raw_len of the manifest chunks != manifest_bytes")
    need(a.tar_bytes % 512 == 0, "§10: tar_bytes is not a multiple of 512")
    a.archive_digest = b2(t[:96 + 40 * a.N])
    ok("§11.4 chunk table bounds and sums")
    need(hmac.compare_digest(a.signer_pk, trusted_pk), "§11.5: signer_public_key is not the trusted key")
    try:
        nacl.signing.VerifyKey(a.signer_pk).verify(b"coldarchive/v1/archive-signature" + a.archive_digest, t[-64:])
    except nacl.exceptions.BadSignatureError:
        raise FormatError("§11.5: the Ed25519 signature over archive_digest does not verify") from None
    ok("§11.5 signer_public_key is trusted, signature valid")
    for i, (off, sl, _, h) in enumerate(a.chunks):
        need(hmac.compare_digest(b2(buf[off:off + sl]), h), f"§11.6: chunk {i}: chunk_hash mismatch")
    ok(f"§11.6 all {a.N} chunk hashes")
    return a

def real_period(p):                      # §5: YYYY, YYYY-MM, YYYY-MM-DD or YYYY-Www, a real date
    m = re.fullmatch(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?|-W(\d{2}))?", p)
    if not m:
        return False
    year, month, day, week = int(m[1]), m[2] and int(m[2]), m[3] and int(m[3]), m[4] and int(m[4])
    if year < 1:
        return False
    if week is not None:                 # a week that exists in its ISO 8601 year
        import datetime
        return 1 <= week <= datetime.date(year, 12, 28).isocalendar()[1]
    if month is not None and not 1 <= month <= 12:
        return False
    if day is not None:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 1 <= day <= [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return True

def parse_header(a, h):                  # §5: tag u16 || length u32 || value, tags strictly increasing
    known = {**FIXED, **(FIXED_V2 if a.version == 2 else {})}
    pos, last, fields = 0, -1, {}
    while pos < len(h):
        need(pos + 6 <= len(h), "§5 header: truncated field")
        tag, length = u("HI", h, pos)
        need(tag > last, f"§5 header: tag {tag:#06x} out of order or repeated")
        need(pos + 6 + length <= len(h), f"§5 header: field {tag:#06x} runs past header_length")
        last, fields[tag], pos = tag, h[pos + 6:pos + 6 + length], pos + 6 + length
        need(tag in known or tag & 0x8000, f"§5 header: unknown critical field {tag:#06x}"
             + (" (fields 0x0010-0x0016 appear only in version 2)" if 0x10 <= tag <= 0x16 else ""))
        need(known.get(tag) in (None, length), f"§5 header: field {tag:#06x} has length {length}")
    need(all(t in fields for t in FIXED), "§5 header: a required field is missing")
    a.suite, a.archive_id, a.created, a.chunk_raw_size = u("H", fields[1])[0], fields[2], u("q", fields[3])[0], u("I", fields[4])[0]
    need(a.suite == 1, f"§5 header: suite {a.suite} is not 1")
    need(4096 <= a.chunk_raw_size <= 1 << 24, "§5 header: chunk_raw_size out of range")
    a.nonce_prefix, a.payload_salt, a.signer_pk = fields[5], fields[6], fields[7]
    a.label = text(fields[0x8001], "§5 label") if 0x8001 in fields else None
    a.creator = text(fields[0x8003], "§5 creator") if 0x8003 in fields else None
    a.sources, s, p = None, fields.get(0x8002), 2
    if s is not None:                    # u16 count, then count × (u16 length, UTF-8 name), nothing after
        need(a.version == 1, "§5 header: v2 archives MUST NOT hold the plaintext sources field 0x8002")
        need(len(s) >= 2 and u("H", s)[0] <= 1024, "§5 sources: missing or too large count")
        a.sources = []
        for _ in range(u("H", s)[0]):
            need(p + 2 <= len(s) and p + 2 + u("H", s, p)[0] <= len(s), "§5 sources: a name runs past the field")
            a.sources.append(text(s[p + 2:p + 2 + u("H", s, p)[0]], "§5 sources name"))
            p += 2 + u("H", s, p)[0]
        need(p == len(s), "§5 sources: bytes after the last name")
    # §5 v2 fields (they cannot reach here in v1: unknown critical tags are refused above)
    a.series = a.sequence = a.period = a.previous_digest = a.base_digest = a.retain_until = None
    a.backup_mode = None
    if 0x10 in fields:
        s = bytes(fields[0x10])
        need(re.fullmatch(rb"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", s),
             "§5 series: not 1-64 of A-Z a-z 0-9 . _ - starting with a letter or digit")
        a.series = s.decode("ascii")
    if 0x11 in fields:
        a.sequence, = u("Q", fields[0x11])
        need(a.sequence >= 1, "§5 sequence: 0")
    if 0x12 in fields:
        p = bytes(fields[0x12])
        need(re.fullmatch(rb"[\x20-\x7e]*", p) and real_period(p.decode("ascii")),
             f"§5 period {p!r}: not YYYY, YYYY-MM, YYYY-MM-DD or YYYY-Www of a real date")
        a.period = p.decode("ascii")
    need((a.series is None) == (a.sequence is None) == (a.period is None),
         "§5: series, sequence and period must appear together or not at all")
    a.previous_digest = fields.get(0x13)
    need((a.previous_digest is not None) == (a.sequence is not None and a.sequence >= 2),
         "§5: previous_archive_digest must appear exactly when sequence >= 2")
    if 0x14 in fields:
        a.backup_mode = fields[0x14][0]
        need(a.backup_mode in (1, 2, 3), f"§5 backup_mode {a.backup_mode} is not 1, 2 or 3")
    a.base_digest = fields.get(0x15)
    if a.backup_mode in (2, 3):
        need(a.series is not None and a.base_digest is not None, "§5: backup_mode 2 or 3 requires series and base_archive_digest")
    need(a.base_digest is None or (a.backup_mode in (2, 3) and a.series is not None),
         "§5: base_archive_digest appears only with backup_mode 2 or 3 and series")
    if 0x16 in fields:
        a.retain_until, = u("q", fields[0x16])
        need(a.retain_until >= a.created, "§5: retain_until < created")

# ---------------------------------------------------------------------------------------------------------
# §7, §8: keys, chunks, manifest

def unwrap(a, keys):
    """§12.2, §7: open file_key with a keyring key, check header_mac, return payload_key."""
    for rtype, key_id, wrapped in a.recipients:
        if rtype == 1 and key_id in keys:
            try:
                file_key = sodium.crypto_box_seal_open(wrapped, *keys[key_id])
            except nacl.exceptions.CryptoError:
                continue                 # §6: "uses the first that opens"
            need(len(file_key) == 32, "§7: file_key is not 32 bytes")
            mac_key = b2(b"coldarchive/v1/header-mac-key" + a.payload_salt, key=file_key)
            need(hmac.compare_digest(b2(a.mac_input, key=mac_key), a.header_mac), "§7: header_mac mismatch")
            a.file_key = file_key
            return b2(b"coldarchive/v1/payload-key" + a.payload_salt, key=file_key)
    raise FormatError("§12.2: no recipient entry matches (and opens with) a key of the keyring")

def open_chunk(a, buf, key, i):
    """§8: decrypt chunk i and decompress its one zstd frame."""
    off, sl, rl, _ = a.chunks[i]
    nonce = a.nonce_prefix + struct.pack("<Q", i | (int(i == a.N - 1) << 63))
    try:
        frame = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            bytes(buf[off:off + sl]), a.header_digest + bytes([int(i >= a.mfc)]), nonce, key)
    except nacl.exceptions.CryptoError:
        raise FormatError(f"§8: chunk {i}: AEAD decryption fails") from None
    need(frame[:4] == ZSTD_MAGIC, f"§8: chunk {i}: not a zstd frame (skippable frames are refused)")
    try:
        fp = zstandard.get_frame_parameters(frame)
        need(fp.content_size == rl, f"§8: chunk {i}: frame does not declare raw_len as its content size")
        need(fp.dict_id == 0, f"§8: chunk {i}: frame needs a dictionary")
        need(fp.window_size <= 1 << 25, f"§8: chunk {i}: frame window over 2^25 bytes")
        d = DCTX.decompressobj()
        raw = d.decompress(frame)
    except zstandard.ZstdError as e:
        raise FormatError(f"§8: chunk {i}: zstd: {e}") from None
    need(d.eof and not d.unused_data and len(raw) == rl, f"§8: chunk {i}: not one frame of raw_len bytes")
    return raw

def path_rules(path, where, version):
    """§8 entry rules (and §12.4): relative, no empty, '.' or '..' component, no NUL, components <= 255 bytes."""
    need(1 <= len(path) <= 4096 and b"\0" not in path, f"{where}: path empty, over 4 096 bytes or holds NUL")
    parts = path.split(b"/")
    need(not path.startswith(b"/") and all(c not in (b"", b".", b"..") for c in parts),
         f"{where}: absolute path, or an empty, '.' or '..' component")
    if version == 2:
        need(all(len(c) <= 255 for c in parts), f"{where}: a path component over 255 bytes")
    return parts

def v1_symlink_rules(e, where):
    """§10 v1: relative, non-empty; ignoring '.', zero or more '..' then zero or more names; stays in the tree."""
    need(e.link and not e.link.startswith(b"/"), f"{where}: empty or absolute symlink target")
    comps = [c for c in e.link.split(b"/") if c != b"."]
    need(all(comps) and b"" not in e.link.split(b"/"), f"{where}: symlink target has an empty component")
    ups = 0
    while ups < len(comps) and comps[ups] == b"..":
        ups += 1
    need(b".." not in comps[ups:], f"{where}: symlink target has '..' after a name")
    need(ups <= e.path.count(b"/"), f"{where}: symlink target leaves the tree")

def parse_acl(v, where):
    """§8 ACL record: count u16 (1..1024), entries acl_tag u8 || perm u8 || id u32 || name_len u8 || name."""
    need(len(v) >= 2, f"{where}: ACL record too short")
    count, = u("H", v)
    need(1 <= count <= 1024, f"{where}: ACL count out of range")
    p, out = 2, []
    for _ in range(count):
        need(p + 7 <= len(v) and p + 7 + v[p + 6] <= len(v), f"{where}: ACL entry runs past the record")
        tag, perm, ident, nl = v[p], v[p + 1], u("I", v, p + 2)[0], v[p + 6]
        name = bytes(v[p + 7:p + 7 + nl])
        p += 7 + nl
        need(tag in ACL_TAGS and perm & ~7 == 0, f"{where}: ACL entry with bad acl_tag {tag} or perm {perm}")
        if tag in (2, 8):
            need(b"\0" not in name, f"{where}: ACL name holds NUL")
        else:
            need(ident == 0xFFFFFFFF and not name, f"{where}: ACL entry of tag {tag} with an id or a name")
        need(not out or (tag, ident) > out[-1][:3:2], f"{where}: ACL entries not in strictly increasing (acl_tag, id) order")
        out.append((tag, perm, ident, name))
    need(p == len(v), f"{where}: bytes after the ACL entries")
    tags = [x[0] for x in out]
    need(tags.count(1) == 1 and tags.count(4) == 1 and tags.count(32) == 1, f"{where}: ACL without exactly one USER_OBJ, GROUP_OBJ, OTHER")
    need((16 in tags) == (2 in tags or 8 in tags), f"{where}: ACL MASK present without USER/GROUP entries, or missing with them")
    return out

def parse_records(e, body, p, count, where):
    """§8 v2 extension records: record_tag u8 || record_length u32 || value, strictly increasing (tag, value)."""
    e.user_name = e.group_name = e.acl_access = e.acl_default = e.read_size = e.sparse_map = None
    e.xattrs, e.unknown_records, last = {}, [], None
    for _ in range(count):
        need(p + 5 <= len(body), f"{where}: extension record runs past the entry")
        tag, rlen = body[p], u("I", body, p + 1)[0]
        need(p + 5 + rlen <= len(body), f"{where}: extension record runs past the entry")
        v, p = bytes(body[p + 5:p + 5 + rlen]), p + 5 + rlen
        need(last is None or (tag, v) > last, f"{where}: extension records not in strictly increasing (tag, value) order")
        last = (tag, v)
        if tag in (1, 2):
            need(1 <= rlen <= 255 and b"\0" not in v, f"{where}: user_name/group_name not 1-255 bytes without NUL")
            setattr(e, "user_name" if tag == 1 else "group_name", v)
        elif tag == 3:
            need(rlen >= 1 and 1 <= v[0] and 1 + v[0] <= rlen, f"{where}: xattr record: bad name_len")
            name, value = v[1:1 + v[0]], v[1 + v[0]:]
            need(b"\0" not in name and len(value) <= 65536, f"{where}: xattr name holds NUL, or value over 65 536 bytes")
            need(name not in (b"system.posix_acl_access", b"system.posix_acl_default"), f"{where}: xattr record holds an ACL")
            need(name not in e.xattrs, f"{where}: xattr {esc(name)} appears twice")
            e.xattrs[name] = value
        elif tag in (4, 5):
            acl = parse_acl(v, f"{where} {'acl_access' if tag == 4 else 'acl_default'}")
            setattr(e, "acl_access" if tag == 4 else "acl_default", acl)
        elif tag == 6:
            need(rlen == 8, f"{where}: read_size record is not 8 bytes")
            e.read_size, = u("Q", v)
        elif tag == 7:
            need(rlen >= 4 and rlen == 4 + 16 * u("I", v)[0], f"{where}: sparse_map length does not match its count")
            e.sparse_map = [u("QQ", v, 4 + 16 * i) for i in range(u("I", v)[0])]
        else:
            need(tag & 0x80, f"{where}: unknown critical extension record {tag:#04x}")
            e.unknown_records.append((tag, v))
    return p

def read_manifest(a, buf, key):
    """§8 manifest section (v1 or v2), §12.3, and the path rules of §8, §10 and §12.4. Returns the entries."""
    m = a.manifest_plain = b"".join(open_chunk(a, buf, key, i) for i in range(a.mfc, a.N))
    need(m[:8] == (b"CAMANIF1" if a.version == 1 else b"CAMANIF2"), "§8 manifest: bad magic")
    p, minimum = 8, 59 if a.version == 1 else 78
    if a.version == 2:                   # the source description
        need(len(m) >= 12, "§8 manifest: no source description")
        dlen, = u("I", m, 8)
        need(dlen <= 1 << 20 and 12 + dlen <= len(m), "§8 source description: description_length out of range")
        a.description_raw, p = m[12:12 + dlen], 12 + dlen
        try:
            a.description = json.loads(a.description_raw.decode("utf-8"), parse_constant=no_constant)
        except (UnicodeDecodeError, ValueError) as err:
            raise FormatError(f"§8 source description: not UTF-8 JSON ({err})") from None
    need(a.entry_count <= (len(m) - p) // (minimum + 4), "§9: entry_count cannot fit in manifest_bytes")
    entries, kinds, dirs, prev_key = [], {}, set(), None
    for k in range(a.entry_count):
        n = u("I", m, p)[0] if p + 4 <= len(m) else 0
        need(minimum <= n <= (8251 if a.version == 1 else 1 << 20) and p + 4 + n <= len(m),
             f"§8 manifest entry {k}: missing or bad entry_length")
        body, p = m[p + 4:p + 4 + n], p + 4 + n
        x = argparse.Namespace(moff=p - n, flags=0, uid=0, gid=0, tar_offset=None, xattrs={}, user_name=None, group_name=None,
                               acl_access=None, acl_default=None, read_size=None, sparse_map=None, unknown_records=[])
        if a.version == 1:
            t, x.mode, x.mtime, x.nsec, x.size, x.hash, pl = u("BHqIQ32sH", body)
            ll = u("H", body, 57 + pl)[0] if 59 + pl <= n else 0
            need(59 + pl + ll == n, f"§8 manifest entry {k}: entry_length does not match path_len and link_len")
            x.path, x.link = bytes(body[57:57 + pl]), bytes(body[59 + pl:])
            text(x.path, f"§8 entry {k} path"), text(x.link, f"§8 entry {k} link")
        else:
            t, x.flags, x.mode, x.uid, x.gid, x.mtime, x.nsec, x.size, x.hash, x.tar_offset, pl = u("BBHIIqIQ32sQH", body)
            need(76 + pl <= n, f"§8 manifest entry {k}: path runs past the entry")
            ll = u("H", body, 74 + pl)[0]
            need(78 + pl + ll <= n, f"§8 manifest entry {k}: link runs past the entry")
            x.path, x.link = bytes(body[74:74 + pl]), bytes(body[76 + pl:76 + pl + ll])
            rc, = u("H", body, 76 + pl + ll)
            end = parse_records(x, body, 78 + pl + ll, rc, f"§8 manifest entry {k} ({esc(x.path)})")
            need(end == n, f"§8 manifest entry {k}: entry_length != 78 + path_len + link_len + Σ (5 + record_length)")
        x.type = TYPES.get(t) if a.version == 2 or t != 5 else None
        where = f"§8 manifest entry {k} ({esc(x.path)})"
        need(x.type, f"{where}: bad entry_type {t}")
        parts = path_rules(x.path, where, a.version)
        need(x.mode <= (0o777 if a.version == 1 else 0o7777) and x.nsec < 10**9, f"{where}: bad mode or mtime_nsec")
        need(x.type == "file" or (x.size == 0 and x.hash == bytes(32)), f"{where}: a non-file with size or content_hash")
        need(b"\0" not in x.link and len(x.link) <= 4096, f"{where}: link holds NUL or is over 4 096 bytes")
        need(bool(x.link) == (x.type in ("symlink", "hardlink")), f"{where}: link where none belongs, or missing")
        # §8 canonical order: strictly increasing paths, component by component, bytewise; parents first
        key_ = parts
        need(prev_key is None or key_ > prev_key, f"{where}: not after the previous entry in canonical order (or a duplicate)")
        prev_key = key_
        parent = b"/".join(parts[:-1])
        need(not parent or parent in dirs, f"{where}: parent is not an earlier directory entry")
        if x.type == "symlink" and a.version == 1:
            v1_symlink_rules(x, where)
        if x.type == "hardlink":
            need(kinds.get(x.link) is not None and kinds[x.link].type == "file", f"{where}: hardlink to other than an earlier file")
            tgt = kinds[x.link]
            same = ["mode", "mtime", "nsec"] + (["uid", "gid", "user_name", "group_name", "xattrs", "acl_access", "acl_default"]
                                                if a.version == 2 else [])
            diff = [f for f in same if getattr(x, f) != getattr(tgt, f)]
            need(not diff, f"{where}: hardlink does not carry its file's {', '.join(diff)}")
            need(x.flags & 1 == tgt.flags & 1, f"{where}: hardlink does not carry its file's changed_while_read flag")
        if a.version == 2:
            v2_entry_rules(a, x, where)
        kinds[x.path] = x
        if x.type == "directory":
            dirs.add(x.path)
        entries.append(x)
    need(p == len(m), "§8 manifest: bytes after entry_count entries")
    need(sum(x.size for x in entries) == a.content_bytes, "§12.3: Σ size != content_bytes")
    tops = [x.path for x in entries if b"/" not in x.path]
    if a.version == 1:
        need(a.sources is None or [s.encode() for s in a.sources] == tops, "§5 sources: not exactly the manifest's top-level entries")
    else:
        v2_tar_offsets(a, entries)
        check_description(a, tops)
    return entries

def no_constant(name):                  # RFC 8259 has no NaN or Infinity
    raise ValueError(f"{name} is not JSON")

def v2_entry_rules(a, x, where):
    """§8 v2 entry rules beyond those common to both versions."""
    need(x.flags & ~3 == 0, f"{where}: flags bits 2-7 set")
    need(not x.flags & 2 or x.flags & 1, f"{where}: flag shrank without changed_while_read")
    need((x.read_size is not None) == bool(x.flags & 2), f"{where}: read_size present exactly when shrank is set: not so")
    if x.type == "symlink":
        need(1 <= len(x.link) <= 4096, f"{where}: symlink target not 1-4 096 bytes")
    if x.type != "file":
        need(x.read_size is None and x.sparse_map is None, f"{where}: read_size or sparse_map on a non-file")
    if x.type != "directory":
        need(x.acl_default is None, f"{where}: acl_default on a non-directory")
    if x.read_size is not None:
        need(x.read_size < x.size, f"{where}: read_size >= size")
    if x.sparse_map is not None:
        end = 0
        for off, ln in x.sparse_map:
            need(off >= end and off + ln <= x.size, f"{where}: sparse_map regions not increasing, overlapping, or outside size")
            end = off + ln
    if x.acl_access is not None:
        tags = {t: perm for t, perm, _, _ in x.acl_access}
        need(2 in [t for t, *_ in x.acl_access] or 8 in [t for t, *_ in x.acl_access],
             f"{where}: access ACL stored without a USER or GROUP entry")
        need(tags[1] == (x.mode >> 6) & 7 and tags[16] == (x.mode >> 3) & 7 and tags[32] == x.mode & 7,
             f"{where}: access ACL USER_OBJ/MASK/OTHER differ from the mode's owner/group/other bits")
    if x.type == "deleted":
        need(a.backup_mode in (2, 3), f"{where}: deleted entry in an archive whose backup_mode is not 2 or 3")
        need(x.mode == x.uid == x.gid == x.mtime == x.nsec == x.flags == 0, f"{where}: deleted entry with mode, owner, time or flags")
        need(x.user_name is x.group_name is x.acl_access is x.acl_default is x.read_size is x.sparse_map is None
             and not x.xattrs and not x.unknown_records, f"{where}: deleted entry with records")

def v2_tar_offsets(a, entries):
    """§8: multiple of 512, strictly increasing over tar entries, 0 for the first, < tar_bytes; a deleted entry's
    equals the next tar entry's (the end-marker offset after the last is checked while reading the tar)."""
    prev = None
    for k, x in enumerate(entries):
        where = f"§8 manifest entry {k} ({esc(x.path)})"
        need(x.tar_offset % 512 == 0 and x.tar_offset < a.tar_bytes, f"{where}: tar_offset not a multiple of 512 or >= tar_bytes")
        if x.type == "deleted":
            nxt = next((y for y in entries[k + 1:] if y.type != "deleted"), None)
            need(nxt is None or x.tar_offset == nxt.tar_offset, f"{where}: deleted entry's tar_offset != the next tar entry's")
            need(nxt is not None or prev is None or x.tar_offset > prev, f"{where}: deleted entry's tar_offset not past the last tar entry")
            continue
        need(x.tar_offset == 0 if prev is None else x.tar_offset > prev,
             f"{where}: tar_offset {x.tar_offset} not 0 for the first tar entry or not strictly increasing")
        prev = x.tar_offset

def check_description(a, tops):
    """§8 v2 source description: a JSON object whose "sources" name the top-level entries, in order."""
    d, w = a.description, "§8 source description"
    need(isinstance(d, dict), f"{w}: not a JSON object")
    srcs = d.get("sources")
    need(isinstance(srcs, list), f"{w}: no \"sources\" array")
    names = []
    for s in srcs:
        need(isinstance(s, dict), f"{w}: a source is not an object")
        need(("name" in s) != ("name_hex" in s), f"{w}: a source needs exactly one of name, name_hex")
        if "name" in s:
            need(isinstance(s["name"], str), f"{w}: name is not a string")
            try:
                names.append(s["name"].encode("utf-8"))
            except UnicodeEncodeError:
                raise FormatError(f"{w}: name is not valid Unicode") from None
        else:
            h = s["name_hex"]
            need(isinstance(h, str) and re.fullmatch(r"(?:[0-9a-f]{2})+", h), f"{w}: name_hex is not lower-case hex")
            names.append(bytes.fromhex(h))
            try:
                names[-1].decode("utf-8")
                a.notes.append(f"§8: source {esc(names[-1])} is valid UTF-8 but given as name_hex")
            except UnicodeDecodeError:
                pass
        need(isinstance(s.get("origin"), str), f"{w}: a source without an \"origin\" string")
        need(s.get("kind") in ("directory", "file", "import"), f"{w}: a source's kind is not directory, file or import")
    need(names == tops, f"{w}: sources {[esc(n) for n in names]} differ from the top-level entries {[esc(n) for n in tops]}")
    need("exclude" not in d or isinstance(d["exclude"], list) and all(isinstance(x, str) for x in d["exclude"]),
         f"{w}: exclude is not an array of strings")
    need("one_file_system" not in d or isinstance(d["one_file_system"], bool), f"{w}: one_file_system is not a boolean")
    need("host" not in d or isinstance(d["host"], str), f"{w}: host is not a string")

# ---------------------------------------------------------------------------------------------------------
# §10: the tar stream, parsed here block by block

class DataStream:
    """§8: the data section as one byte stream of tar_bytes bytes, opening chunks 0 … manifest_first_chunk-1 as needed."""
    def __init__(self, opener, count, total):
        self.opener, self.count, self.total, self.next, self.cur, self.at, self.pos = opener, count, total, 0, b"", 0, 0
    def read(self, n):
        need(self.pos + n <= self.total, "§10: the tar stream ends inside an entry (no end-of-archive marker)")
        out = []
        while n:
            if self.at == len(self.cur):
                need(self.next < self.count, "§9: the data chunks hold fewer bytes than tar_bytes")
                self.cur, self.at, self.next = self.opener(self.next), 0, self.next + 1
            piece = self.cur[self.at:self.at + n]
            out.append(piece)
            self.at, self.pos, n = self.at + len(piece), self.pos + len(piece), n - len(piece)
        return b"".join(out)

def tar_number(field, what):
    """A ustar numeric field: octal digits ended by NUL or space, or base-256 (first byte 0x80 / 0xff)."""
    if field[0] & 0x80:
        v = int.from_bytes(field[1:], "big")
        return v - (1 << (8 * len(field) - 8)) if field[0] == 0xff else (need(field[0] == 0x80, f"§10: bad base-256 {what}") or v)
    s = field.rstrip(b"\0 ").lstrip(b" ")
    need(re.fullmatch(rb"[0-7]*", s), f"§10: tar header {what} field {field!r} is not octal")
    return int(s or b"0", 8)

def parse_pax(data, where):
    """pax extended header records "LEN KEY=VALUE\\n" as bytes; refuses malformed and repeated records."""
    recs, p = {}, 0
    while p < len(data):
        m = re.match(rb"([1-9][0-9]{0,19}) ", data[p:p + 21])
        need(m, f"{where}: malformed pax record length")
        n = int(m[1])
        rec = data[p + len(m[0]):p + n]
        need(p + n <= len(data) and rec.endswith(b"\n") and b"=" in rec, f"{where}: malformed pax record")
        k, v = rec[:-1].split(b"=", 1)
        need(k not in recs, f"{where}: pax record {k!r} repeated")
        recs[k] = v
        p += n
    return recs

def pax_int(recs, key, where):
    v = recs[key]
    need(re.fullmatch(rb"[0-9]{1,20}", v), f"{where}: pax {key.decode()} {v!r} is not a decimal number")
    return int(v)

def pax_mtime(v, version, where):
    """§10: "seconds[.fraction]"; v1: a negative value is libarchive's floored seconds then the fraction;
    v2: the pax standard's decimal value. Returns (floored seconds, nanoseconds)."""
    m = re.fullmatch(rb"(-?)(\d{1,19})(?:\.(\d{0,9}))?", v)
    need(m, f"{where}: pax mtime {v!r} is not seconds with at most 9 fractional digits")
    sec, frac = int(m[2]), int((m[3] or b"").ljust(9, b"0"))
    if not m[1]:
        return sec, frac
    if version == 1:
        return -sec, frac
    return divmod(-(sec * 10**9 + frac), 10**9)

def acl_text(v, where):
    """SCHILY.acl.access/default: "tag:qualifier:perms[:id]" entries separated by ',' (or newlines).
    Returns a set of (acl_tag, perm, id, qualifier)."""
    out = set()
    for item in re.split(rb"[,\n]", v):
        if not item.strip():
            continue
        f = item.split(b":")
        need(len(f) >= 3, f"{where}: ACL text entry {item!r} malformed")
        word = {b"user": "user", b"u": "user", b"group": "group", b"g": "group", b"mask": "mask", b"m": "mask",
                b"other": "other", b"o": "other"}.get(f[0])
        need(word, f"{where}: ACL text entry {item!r} has an unknown tag")
        if len(f) >= 4 and re.fullmatch(rb"[rwx-]{3}", f[-2]) and re.fullmatch(rb"[0-9]+", f[-1]):
            qual, perms, ident = b":".join(f[1:-2]), f[-2], int(f[-1])
        else:
            qual, perms, ident = b":".join(f[1:-1]), f[-1], None
        need(re.fullmatch(rb"[r-][w-][x-]", perms), f"{where}: ACL text entry {item!r} has bad permissions")
        perm = (perms[0] == ord("r")) * 4 + (perms[1] == ord("w")) * 2 + (perms[2] == ord("x"))
        if word in ("mask", "other"):
            need(not qual and ident is None, f"{where}: ACL text entry {item!r} has a qualifier")
            out.add((16 if word == "mask" else 32, perm, 0xFFFFFFFF, b""))
        elif not qual:
            need(ident is None, f"{where}: ACL text entry {item!r} has an id without a qualifier")
            out.add((1 if word == "user" else 4, perm, 0xFFFFFFFF, b""))
        else:
            if ident is None:
                need(re.fullmatch(rb"[0-9]+", qual), f"{where}: ACL text entry {item!r} names no numeric id")
                ident = int(qual)
            out.add((2 if word == "user" else 8, perm, ident, qual))
    return out

def acl_matches(tar_set, acl):
    """§10: compare as sets of ACL entries; a USER/GROUP entry whose manifest name is empty is written with
    its id as the qualifier."""
    want = {(t, p, i, n if n or t not in (2, 8) else str(i).encode()) for t, p, i, n in (acl or [])}
    return tar_set == want

KNOWN_PAX = {b"hdrcharset", b"path", b"linkpath", b"mtime", b"size", b"uid", b"gid", b"uname", b"gname",
             b"SCHILY.acl.access", b"SCHILY.acl.default", b"GNU.sparse.major", b"GNU.sparse.minor",
             b"GNU.sparse.name", b"GNU.sparse.realsize"}

class TarEntry:
    pass

def read_tar_entry(ds, version, where_at):
    """Reads one entry's headers (pax 'x' then ustar) at the stream position. Returns None at the end-of-archive
    marker, else a TarEntry with the effective fields (data not yet read)."""
    t = TarEntry()
    t.offset, pax = ds.pos, None
    while True:
        blk = ds.read(512)
        if blk == bytes(512):
            need(pax is None, f"{where_at(ds.pos - 512)}: a pax extended header followed by the end-of-archive marker")
            return None
        w = where_at(ds.pos - 512)
        need(sum(blk[:148]) + 256 + sum(blk[156:]) == tar_number(blk[148:156], "chksum"), f"{w}: tar header checksum mismatch")
        need(blk[257:265] == b"ustar\x0000", f"{w}: not a POSIX ustar header (magic {blk[257:265]!r})")
        flag = blk[156:157]
        if flag == b"x":
            need(pax is None, f"{w}: two pax extended headers for one entry")
            n = tar_number(blk[124:136], "size")
            need(n <= 1 << 24, f"{w}: pax extended header over 16 MiB")
            data = ds.read((n + 511) // 512 * 512)
            pax = parse_pax(data[:n], w)
            continue
        need(flag in TAR_TYPES, f"{w}: typeflag {flag!r} refused (§10: only 0, 1, 2, 5 and x)")
        break
    pax = pax or {}
    t.pax, t.type = pax, TAR_TYPES[flag]
    if version == 2 and pax:
        need(pax.get(b"hdrcharset") == b"BINARY", f"{w}: v2 pax extended header without hdrcharset=BINARY")
    cstr = lambda f: f.split(b"\0", 1)[0]
    name, prefix = cstr(blk[0:100]), cstr(blk[345:500])
    t.path = pax.get(b"path", prefix + b"/" + name if prefix else name)
    t.link = pax.get(b"linkpath", cstr(blk[157:257]))
    t.mode = tar_number(blk[100:108], "mode")
    t.uid = pax_int(pax, b"uid", w) if b"uid" in pax else tar_number(blk[108:116], "uid")
    t.gid = pax_int(pax, b"gid", w) if b"gid" in pax else tar_number(blk[116:124], "gid")
    t.size = pax_int(pax, b"size", w) if b"size" in pax else tar_number(blk[124:136], "size")
    t.mtime = pax_mtime(pax[b"mtime"], version, w) if b"mtime" in pax else (tar_number(blk[136:148], "mtime"), 0)
    t.uname = pax.get(b"uname", cstr(blk[265:297]))
    t.gname = pax.get(b"gname", cstr(blk[297:329]))
    need(t.size >= 0 and t.uid >= 0 and t.gid >= 0, f"{w}: negative size, uid or gid")
    t.sparse = None
    if any(k.startswith(b"GNU.sparse.") for k in pax):   # §10 v2: pax GNU sparse format 1.0 only
        need(version == 2 and pax.get(b"GNU.sparse.major") == b"1" and pax.get(b"GNU.sparse.minor") == b"0"
             and b"GNU.sparse.name" in pax and b"GNU.sparse.realsize" in pax, f"{w}: GNU sparse other than pax format 1.0")
        need(set(k for k in pax if k.startswith(b"GNU.sparse.")) ==
             {b"GNU.sparse.major", b"GNU.sparse.minor", b"GNU.sparse.name", b"GNU.sparse.realsize"},
             f"{w}: GNU sparse 1.0 entry with other GNU.sparse records")
        need(t.type == "file", f"{w}: GNU sparse record on a non-file")
        t.path, t.sparse = pax[b"GNU.sparse.name"], pax_int(pax, b"GNU.sparse.realsize", w)
    t.where = w
    return t

def tar_xattrs(t, where):
    """§10 v2: SCHILY.xattr.NAME = raw value; LIBARCHIVE.xattr.NAME (name percent-encoded, value base64).
    Returns the list of the (name -> value) maps found, one per style present."""
    schily = {k[len(b"SCHILY.xattr."):]: v for k, v in t.pax.items() if k.startswith(b"SCHILY.xattr.")}
    lib = {}
    for k, v in t.pax.items():
        if k.startswith(b"LIBARCHIVE.xattr."):
            raw = k[len(b"LIBARCHIVE.xattr."):]
            try:
                name = re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m[1], 16)]), raw)
                value = base64.b64decode(v + b"=" * (-len(v) % 4), validate=True)
            except ValueError:
                raise FormatError(f"{where}: LIBARCHIVE.xattr record {raw!r} is not valid base64") from None
            need(name not in lib, f"{where}: LIBARCHIVE.xattr {name!r} twice")
            lib[name] = value
    return [x for x in (schily, lib) if x] or [{}]

def compare_entry(a, t, e, where):
    """§12.4: the tar entry against its manifest entry."""
    path = t.path
    if t.type == "directory":
        need(path.endswith(b"/"), f"{where}: tar directory name {esc(path)} does not end in '/'")
        path = path[:-1]
    if a.version == 1:                   # §12: v1 tar names are UTF-8, compared up to canonical equivalence
        try:
            same = nfc(path.decode("utf-8")) == nfc(e.path.decode("utf-8"))
            same_link = nfc(t.link.decode("utf-8")) == nfc(e.link.decode("utf-8"))
        except UnicodeDecodeError:
            raise FormatError(f"{where}: v1 tar name or link target is not UTF-8") from None
    else:
        same, same_link = path == e.path, t.link == e.link
    need(same, f"{where}: tar name {esc(path)} differs")
    need(t.type == e.type, f"{where}: tar type {t.type} differs from the manifest's {e.type}")
    want_mode = e.mode                   # §10 v2: with an access ACL, the group bits are GROUP_OBJ's, not the MASK's
    if e.acl_access and a.version == 2:
        want_mode = e.mode & ~0o070 | next(p for tag, p, _, _ in e.acl_access if tag == 4) << 3
    need(t.mode & 0o7777 == want_mode, f"{where}: tar mode {t.mode & 0o7777:o} differs from {want_mode:o} (manifest mode {e.mode:o})")
    need(t.mtime == (e.mtime, e.nsec), f"{where}: tar mtime {t.mtime} differs from the manifest's {(e.mtime, e.nsec)}")
    need(same_link, f"{where}: tar link target {esc(t.link)} differs")
    logical = t.sparse if t.sparse is not None else t.size
    need(logical == e.size and (e.type == "file" or t.size == 0), f"{where}: tar size {logical} differs from the manifest's {e.size}")
    if a.version == 1:
        need(t.uid == 0 and t.gid == 0 and not t.uname and not t.gname, f"{where}: v1 tar entry stores an owner")
        need(t.mode & 0o7000 == 0, f"{where}: v1 tar entry with setuid, setgid or sticky bits")
        return
    need(t.uid == e.uid and t.gid == e.gid, f"{where}: tar uid/gid {t.uid}/{t.gid} differ from the manifest's {e.uid}/{e.gid}")
    need(t.uname == (e.user_name or b"") and t.gname == (e.group_name or b""),
         f"{where}: tar uname/gname {esc(t.uname)}/{esc(t.gname)} differ from the manifest's")
    for found in tar_xattrs(t, where):
        need(found == e.xattrs, f"{where}: tar xattrs {sorted(found)} differ from the manifest's {sorted(e.xattrs)}")
    for key, acl in ((b"SCHILY.acl.access", e.acl_access), (b"SCHILY.acl.default", e.acl_default)):
        have = acl_text(t.pax[key], where) if key in t.pax else set()
        need(acl_matches(have, acl), f"{where}: {key.decode()} differs from the manifest's ACL")
    need((t.sparse is not None) == (e.sparse_map is not None), f"{where}: GNU sparse in the tar and sparse_map in the manifest disagree")
    for k in t.pax:
        if k.startswith(b"SCHILY.acl.") and k not in (b"SCHILY.acl.access", b"SCHILY.acl.default"):
            raise FormatError(f"{where}: pax record {k.decode(errors='replace')} (an ACL kind the manifest cannot hold)")
        if k not in KNOWN_PAX and not k.startswith((b"SCHILY.xattr.", b"LIBARCHIVE.xattr.")):
            a.notes.append(f"§10: {esc(e.path)}: pax record {esc(k)} is not one FORMAT.md names (ignored)")

def read_sparse_map(ds, t, e, where):
    """GNU sparse 1.0: decimal lines (count, then offset and length per region) in 512-byte blocks."""
    lines, raw, used = [], b"", 0
    while True:
        need(used + 512 <= t.size, f"{where}: GNU sparse map runs past the entry's data")
        raw += ds.read(512)
        used += 512
        lines = raw.split(b"\n")
        if lines and lines[0] and re.fullmatch(rb"[0-9]{1,20}", lines[0]):
            if len(lines) - 1 >= 1 + 2 * int(lines[0]):
                break
        else:
            need(len(lines) == 1 and len(raw) < 4096, f"{where}: malformed GNU sparse map")
    n = int(lines[0])
    nums = lines[1:1 + 2 * n]
    need(all(re.fullmatch(rb"[0-9]{1,20}", x) for x in nums), f"{where}: malformed GNU sparse map")
    regions = [(int(nums[2 * i]), int(nums[2 * i + 1])) for i in range(n)]
    need(regions == list(e.sparse_map), f"{where}: GNU sparse map {regions} differs from the manifest's sparse_map")
    need(t.size == used + sum(ln for _, ln in regions), f"{where}: GNU sparse entry's data size does not match its map")
    return used

def walk_tar(a, buf, key, entries, sink=None):
    """§12.4-5: read the tar stream, check each entry against the manifest entry it belongs to; a sink writes."""
    ds = DataStream(lambda i: open_chunk(a, buf, key, i), a.mfc, a.tar_bytes)
    k, seen = 0, []
    at = lambda off: f"§10 tar stream at {off}"
    while True:
        t = read_tar_entry(ds, a.version, at)
        start = t.offset if t else ds.pos - 512
        while k < len(entries) and entries[k].type == "deleted":   # §8: no tar entry; tar_offset = the next one's
            need(entries[k].tar_offset == start, f"§8 manifest entry {k} ({esc(entries[k].path)}): "
                 f"deleted entry's tar_offset {entries[k].tar_offset} != {start}")
            sink and sink.deleted(entries[k])
            k += 1
        if t is None:
            break
        need(k < len(entries), "§12.5: the tar stream has more entries than the manifest")
        e, k = entries[k], k + 1
        where = f"§12.4 tar entry {len(seen)} ({esc(e.path)})"
        if a.version == 2:
            need(t.offset == e.tar_offset, f"{where}: starts at {t.offset}, not at its manifest tar_offset {e.tar_offset}")
        compare_entry(a, t, e, where)
        seen.append(t.offset)
        out = sink.create(e) if sink and e.type == "file" else None
        if e.type == "file":
            h, pos, nonzero_tail = hashlib.blake2b(digest_size=32), 0, False
            if t.sparse is not None:
                read_sparse_map(ds, t, e, where)
            for off, ln in (e.sparse_map if t.sparse is not None else [(0, t.size)]):
                zero_fill(h, off - pos)  # holes read as zeros (§8 content_hash)
                out and out.seek(off)
                pos = off
                while pos < off + ln:
                    piece = ds.read(min(off + ln - pos, 1 << 20))
                    h.update(piece)
                    out and out.write(piece)
                    if e.read_size is not None and pos + len(piece) > e.read_size:
                        nonzero_tail |= bool(piece[max(0, e.read_size - pos):].strip(b"\0"))
                    pos += len(piece)
            zero_fill(h, e.size - pos)
            ds.read((-t.size) % 512)
            need(h.digest() == e.hash, f"{where}: content BLAKE2b-256 differs from the manifest")
            if nonzero_tail:
                a.notes.append(f"§8: {esc(e.path)} is flagged shrank but holds non-zero bytes after read_size")
        if sink:
            sink.finish(e, out)
    need(k == len(entries), f"§12.5: the tar stream ended after {k} of {len(entries)} manifest entries")
    # §10: two zero end-of-archive blocks, then only zero padding up to tar_bytes; §12.5: every data chunk opened
    need(ds.pos + 512 <= a.tar_bytes and ds.read(512) == bytes(512), "§10: the end-of-archive marker is not two zero blocks")
    while ds.pos < a.tar_bytes:
        need(not ds.read(min(a.tar_bytes - ds.pos, 1 << 20)).strip(b"\0"), "§10: non-zero bytes after the end-of-archive marker")
    need(ds.next == a.mfc and ds.at == len(ds.cur), "§12.5: not every data chunk was opened")
    return seen

def zero_fill(h, n):
    z = bytes(min(n, 1 << 20))
    while n > 0:
        h.update(z[:min(n, len(z))])
        n -= len(z)

def nfc(name):
    return unicodedata.normalize("NFC", name)

# ---------------------------------------------------------------------------------------------------------
# §12: writing entries out

def acl_xattr(acl):
    """Linux's system.posix_acl_* xattr value: version 2, then (tag u16, perm u16, id u32) per entry, sorted
    by tag then id — the manifest's order, with the same tag values."""
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, p, i) for t, p, i, _ in acl)

class Extractor:
    """Creates entries under root, opening every path component by component with O_NOFOLLOW, never over an
    existing file; directory owners, modes, attributes and times are applied last, deepest first."""
    def __init__(self, root, version):
        os.makedirs(root, exist_ok=True)
        self.root = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.version, self.dirs, self.reports = version, [], []
        self.as_root = os.geteuid() == 0
    def report(self, e, why):
        self.reports.append(f"{esc(e.path)}: {why}")
    def parent(self, path):
        """(fd of the directory holding the last component, that component); never follows a symlink."""
        parts = path.split(b"/")
        fd = os.dup(self.root)
        try:
            for c in parts[:-1]:
                nfd = os.open(c, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                os.close(fd)
                fd = nfd
        except BaseException:
            os.close(fd)
            raise
        return fd, parts[-1]
    def create(self, e):
        pfd, name = self.parent(e.path)
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=pfd)
        finally:
            os.close(pfd)
        return open(fd, "wb")
    def metadata(self, e, fd):
        """Owner (root only), then mode, extended attributes, ACLs, mode again, times, on an open fd."""
        if self.version == 2 and self.as_root:
            try:
                os.fchown(fd, e.uid, e.gid)
            except OSError as err:
                self.report(e, f"owner {e.uid}:{e.gid} not set ({err.strerror})")
        elif self.version == 2 and (e.uid, e.gid) != (os.geteuid(), os.getegid()):
            self.report(e, f"owner {e.uid}:{e.gid} not set (not running as root)")
        os.fchmod(fd, e.mode)
        if self.version == 2:
            attrs = list(e.xattrs.items())
            attrs += [(b"system.posix_acl_access", acl_xattr(e.acl_access))] if e.acl_access else []
            attrs += [(b"system.posix_acl_default", acl_xattr(e.acl_default))] if e.acl_default else []
            for n, v in attrs:
                try:
                    os.setxattr(fd, n, v)
                except OSError as err:
                    self.report(e, f"{'ACL' if n.startswith(b'system.posix_acl') else 'xattr'} {esc(n)} not set ({err.strerror})")
            if attrs:
                os.fchmod(fd, e.mode)
            if os.fstat(fd).st_mode & 0o7777 != e.mode:
                self.report(e, f"mode {e.mode:04o} not kept (is {os.fstat(fd).st_mode & 0o7777:04o})")
        ns = e.mtime * 10**9 + e.nsec
        os.utime(fd, ns=(ns, ns))
    def finish(self, e, out):
        if e.type == "file":
            out.flush()
            fd = out.fileno()
            if e.sparse_map is not None:
                os.ftruncate(fd, e.size)
            if e.read_size is not None:  # §8: restore truncates a shrunk file to read_size
                os.ftruncate(fd, e.read_size)
                self.report(e, f"shrank while being archived: truncated to read_size {e.read_size} of {e.size} bytes")
            elif e.flags & 1:
                self.report(e, "changed while being archived: content may mix old and new")
            try:
                self.metadata(e, fd)
            finally:
                out.close()
            return
        pfd, name = self.parent(e.path)
        try:
            if e.type == "directory":
                os.mkdir(name, 0o700, dir_fd=pfd)
                self.dirs.append(e)
            elif e.type == "symlink":
                os.symlink(e.link, name, dir_fd=pfd)
                if self.version == 2 and self.as_root:
                    try:
                        os.chown(name, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)
                    except OSError as err:
                        self.report(e, f"owner {e.uid}:{e.gid} not set ({err.strerror})")
                for n, v in e.xattrs.items():   # no fd for a link itself: its directory's /proc path, not followed
                    try:
                        os.setxattr(b"/proc/self/fd/%d/" % pfd + name, n, v, follow_symlinks=False)
                    except OSError as err:
                        self.report(e, f"xattr {esc(n)} not set ({err.strerror})")
                if e.mode != 0o777:
                    self.report(e, f"symlink mode {e.mode:04o} cannot be set on Linux")
                ns = e.mtime * 10**9 + e.nsec
                os.utime(name, ns=(ns, ns), dir_fd=pfd, follow_symlinks=False)
            elif e.type == "hardlink":   # the file it links to already carries the same metadata (§8)
                sfd, sname = self.parent(e.link)
                try:
                    os.link(sname, name, src_dir_fd=sfd, dst_dir_fd=pfd, follow_symlinks=False)
                finally:
                    os.close(sfd)
        finally:
            os.close(pfd)
    def deleted(self, e):
        self.report(e, "deleted since the base archive (nothing written)")
    def close(self):
        for e in reversed(self.dirs):
            pfd, name = self.parent(e.path)
            try:
                fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
            finally:
                os.close(pfd)
            try:
                self.metadata(e, fd)
            finally:
                os.close(fd)
        os.close(self.root)

# ---------------------------------------------------------------------------------------------------------
# §14: keys

def read_public(path):                   # §14: "coldarchive-signing-ed25519 BASE64"; '#' starts a comment
    lines = [l.strip(" \t\r\n").split(" ") for l in open(path, encoding="utf-8")
             if l.strip(" \t\r\n") and not l.startswith("#")]
    need(len(lines) == 1 and len(lines[0]) == 2 and lines[0][0] == "coldarchive-signing-ed25519",
         f"§14: {path}: not a signing public key file")
    try:
        key = base64.b64decode(lines[0][1], validate=True)
    except ValueError:
        key = b""
    need(len(key) == 32, f"§14: {path}: the key is not 32 bytes of base64")
    return key

def read_secret(path, kind):
    """§14 secret key file, protection 0 only: returns (public key, secret)."""
    d = open(path, "rb").read()
    need(len(d) >= 54 + 32 and d[:12] == b"CASECKEY" + bytes([1, kind, 0, 0]),
         f"§14: {path}: not an unprotected secret key file of kind {kind}")
    n, = u("H", d, 52)
    need(len(d) == 54 + n + 32 and n == (64 if kind == 1 else 32), f"§14: {path}: bad secret_len")
    need(hmac.compare_digest(d[-32:], b2(d[:-32])), f"§14: {path}: checksum mismatch")
    pk, sk = d[20:52], d[54:54 + n]
    half = sk[32:] if kind == 1 else sodium.crypto_scalarmult_base(sk)
    need(half == pk, f"§14: {path}: the secret does not match the public key")
    return pk, sk

def read_keyring(keydir):
    """§14: secret key files KEYDIR/encryption/*.key -> {key_id: (public key, secret key)}."""
    keys = {}
    for path in sorted(glob.glob(os.path.join(keydir, "encryption", "*.key"))):
        pk, sk = read_secret(path, 2)
        keys[b2(pk, 16)] = (pk, sk)      # §6: key_id = BLAKE2b-128(public key)
    need(keys, f"no encryption/*.key in {keydir}")
    return keys

def open_archive(buf, trusted_pk, keys, ok=lambda msg: None):
    """All the checks of a restore (§12) without writing anything."""
    a = verify(buf, trusted_pk, ok)
    key = unwrap(a, keys)
    ok("§12.2 file_key unwrapped, header_mac valid")
    entries = read_manifest(a, buf, key)
    ok(f"§12.3 manifest v{a.version}: {len(entries)} entries, content_bytes, path, order and record rules"
       + (", source description, tar_offsets" if a.version == 2 else ""))
    a.tar_offsets = walk_tar(a, buf, key, entries)
    ok("§12.4-5 tar stream matches the manifest entry by entry (content hashes too), ends together"
       + (" (owners, names as bytes, xattrs, ACLs, tar_offset)" if a.version == 2 else ""))
    return a, key, entries

def load(path):
    if os.path.getsize(path) > MAX_FILE:
        raise OSError(f"{path}: over {MAX_FILE} bytes; this decoder reads archives whole and refuses it")
    return open(path, "rb").read()

def iso(sec, nsec=None):                 # the UTC timestamps of the listing and summary JSON
    t = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=sec)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ("Z" if nsec is None else f".{nsec:09d}Z")

# ---------------------------------------------------------------------------------------------------------
# --check: the test vectors, and a self-test on altered copies re-sealed with the test keys

def header_fields(h):
    out, pos = [], 0
    while pos < len(h):
        tag, n = u("HI", h, pos)
        out.append((tag, bytes(h[pos + 6:pos + 6 + n])))
        pos += 6 + n
    return out

def encode_fields(fields):
    return b"".join(struct.pack("<HI", t, len(v)) + v for t, v in sorted(fields))

def reseal(a, buf, key, sk, tar=None, man=None, header=None, entry_count=None, content_bytes=None, version=None):
    """Builds an archive from (possibly altered) plaintexts with the same keys: the test keyring holds the
    signing secret, and unwrap() kept file_key. Used only to prove that the checks above refuse alterations."""
    hlen, = u("I", buf, 12)
    hdr = buf[16:16 + hlen] if header is None else header
    version = a.version if version is None else version
    prelude = buf[:8] + struct.pack("<HHI", version, 0, len(hdr))
    digest = b2(prelude + hdr)
    blk = buf[16 + hlen:a.payload_offset]
    mac = b2(digest + blk[4:-64], key=b2(b"coldarchive/v1/header-mac-key" + a.payload_salt, key=a.file_key))
    rblk = blk[:-64] + mac
    rblk += b2(rblk)
    tar = b"".join(open_chunk(a, buf, key, i) for i in range(a.mfc)) if tar is None else tar
    man = a.manifest_plain if man is None else man
    n, cctx = a.chunk_raw_size, zstandard.ZstdCompressor(write_content_size=True, write_checksum=False)
    pieces = [(tar[i:i + n], 0) for i in range(0, len(tar), n)] + [(man[i:i + n], 1) for i in range(0, len(man), n)]
    chunks = []
    for i, (piece, section) in enumerate(pieces):
        nonce = a.nonce_prefix + struct.pack("<Q", i | (int(i == len(pieces) - 1) << 63))
        chunks.append(sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(cctx.compress(piece), digest + bytes([section]), nonce, key))
    payload = b"".join(chunks)
    fixed = b"CATRAILR" + digest + struct.pack("<7Q", len(pieces), -(-len(tar) // n), len(tar), len(man),
                                               a.entry_count if entry_count is None else entry_count,
                                               a.content_bytes if content_bytes is None else content_bytes, len(payload))
    fixed += b"".join(struct.pack("<II", len(c), len(p)) + b2(c) for c, (p, _) in zip(chunks, pieces))
    sig = nacl.signing.SigningKey(sk[:32]).sign(b"coldarchive/v1/archive-signature" + b2(fixed)).signature
    head = prelude + hdr + rblk
    footer = b"CAFOOTR1" + struct.pack("<H", version) + bytes(6) + struct.pack("<3Q", len(head), len(head) + len(payload), len(fixed) + 64)
    return head + payload + fixed + sig + footer + b2(footer, 16)

def patch(data, off, new):
    return data[:off] + new + data[off + len(new):]

def tar_fix(tar, off):
    """Recomputes the ustar checksum of the header block at off."""
    blk = tar[off:off + 512]
    s = sum(blk[:148]) + 256 + sum(blk[156:])
    return patch(tar, off + 148, b"%06o\0 " % s)

def entry_header(tar, off):
    """(offset of the pax data or None, offset of the ustar header) of the entry starting at off."""
    if tar[off + 156:off + 157] == b"x":
        n = int(tar[off + 124:off + 136].strip(b"\0 ") or b"0", 8)
        return off + 512, off + 512 + (n + 511) // 512 * 512
    return None, off

def mutations(a, buf, key, entries, sk):
    """(name, archive bytes, expected: True = accepted, False = refused) for the self-test."""
    tar = b"".join(open_chunk(a, buf, key, i) for i in range(a.mfc))
    man, v2, out = a.manifest_plain, a.version == 2, []
    def case(name, accept, **kw):
        out.append((name, reseal(a, buf, key, sk, **kw), accept))
    offs = dict(zip([k for k, e in enumerate(entries) if e.type != "deleted"], a.tar_offsets))
    case("resealed unchanged", True)
    d = next(e for e in entries if e.type == "directory")
    mo = d.moff + (2 if v2 else 1)
    case(f"manifest: mode of {esc(d.path)} changed", False, man=patch(man, mo, struct.pack("<H", d.mode ^ 1)))
    case("manifest: entry_count + 1", False, entry_count=a.entry_count + 1)
    case("manifest: content_bytes + 1", False, content_bytes=a.content_bytes + 1)
    fk = next(k for k, e in enumerate(entries) if e.type == "file")
    _, h = entry_header(tar, offs[fk])
    case(f"tar: typeflag of {esc(entries[fk].path)} '0' -> '7'", False, tar=tar_fix(patch(tar, h + 156, b"7"), h))
    case(f"tar: typeflag of {esc(entries[fk].path)} '0' -> NUL (old regular file)", False, tar=tar_fix(patch(tar, h + 156, b"\0"), h))
    case("tar: non-zero byte at the end of the padding", False, tar=patch(tar, len(tar) - 1, b"\1"))
    case("tar: one byte of content changed", False, tar=patch(tar, h + 512, bytes([tar[h + 512] ^ 1])))
    xk = next((k for k in sorted(offs) if tar[offs[k] + 156:offs[k] + 157] == b"x"), None)
    if xk is not None:
        x = offs[xk]
        case("tar: a pax header made global ('g')", False, tar=tar_fix(patch(tar, x + 156, b"g"), x))
        pd, _ = entry_header(tar, x)
        i = tar.find(b"hdrcharset=BINARY", pd, pd + 4096)
        if i >= 0:
            case("tar: hdrcharset=BINARY -> BINARZ", False, tar=patch(tar, i + 16, b"Z"))
        i = tar.find(b" mtime=", pd, pd + 4096)
        if i >= 0:
            j = tar.index(b"\n", i)
            digit = j - 1 if tar[j - 1:j].isdigit() else None
            if digit:
                alt = b"1" if tar[digit:digit + 1] != b"1" else b"2"
                case("tar: pax mtime's last digit changed", False, tar=patch(tar, digit, alt))
    if not v2:
        return out
    e1 = next(k for k in sorted(offs) if k > 0)
    out.append((f"manifest: tar_offset of {esc(entries[e1].path)} + 512",
                reseal(a, buf, key, sk, man=patch(man, entries[e1].moff + 64, struct.pack("<Q", entries[e1].tar_offset + 512))), False))
    case(f"manifest: uid of {esc(d.path)} + 1", False, man=patch(man, d.moff + 4, struct.pack("<I", d.uid + 1)))
    case(f"manifest: flags bit 2 on {esc(d.path)}", False, man=patch(man, d.moff + 1, b"\4"))
    linked = {x.link for x in entries if x.type == "hardlink"}
    fk = next(k for k, e in enumerate(entries) if e.type == "file" and not e.acl_access and e.path not in linked)
    _, h = entry_header(tar, offs[fk])
    e = entries[fk]
    ustar_mode = lambda t, hh, m: tar_fix(patch(t, hh + 100, b"%07o\0" % m), hh)
    both = ustar_mode(tar, h, e.mode | 0o4000)
    out.append((f"manifest and tar: setuid on {esc(e.path)}",
                reseal(a, buf, key, sk, tar=both, man=patch(man, e.moff + 2, struct.pack("<H", e.mode | 0o4000))), True))
    case(f"tar only: setuid on {esc(e.path)}", False, tar=both)
    case(f"tar only: uid field of {esc(e.path)} + 1", False, tar=tar_fix(patch(tar, h + 108, b"%07o\0" % (e.uid + 1)), h))
    for k, x in enumerate(entries):
        if x.xattrs and k in offs:
            pd, _ = entry_header(tar, offs[k])
            i = tar.find(b" SCHILY.xattr.", pd, pd + 1 << 16)
            if i >= 0:
                v = tar.index(b"=", i) + 1
                if tar[v:v + 1] != b"\n":
                    case(f"tar: SCHILY.xattr value of {esc(x.path)} changed", False, tar=patch(tar, v, bytes([tar[v] ^ 1])))
            i = tar.find(b" LIBARCHIVE.xattr.", pd, pd + 1 << 16)
            if i >= 0:
                v = tar.index(b"=", i) + 1
                alt = b"B" if tar[v:v + 1] != b"B" else b"C"
                case(f"tar: LIBARCHIVE.xattr value of {esc(x.path)} changed", False, tar=patch(tar, v, alt))
            break
    for k, x in enumerate(entries):
        if x.acl_access and k in offs:
            pd, hh = entry_header(tar, offs[k])
            out.append((f"tar: mode of {esc(x.path)} with the MASK's group bits, not GROUP_OBJ's",
                        reseal(a, buf, key, sk, tar=ustar_mode(tar, hh, x.mode)), x.mode == tar_number(tar[hh + 100:hh + 108], "mode")))
            i = tar.find(b"SCHILY.acl.access=", pd, pd + 1 << 16)
            if i >= 0:
                j = tar.index(b"\n", i)
                i = tar.rfind(b"other::", i, j)
                if i >= 0:
                    flip = b"-" if tar[i + 7:i + 8] == b"r" else b"r"
                    case(f"tar: SCHILY.acl.access other:: of {esc(x.path)} changed", False, tar=patch(tar, i + 7, flip))
            break
    desc = json.loads(a.description_raw)
    if desc.get("sources"):
        s0 = desc["sources"][0]
        s0["name"] = (s0.get("name") or "x") + "-renamed"
        s0.pop("name_hex", None)
        raw = json.dumps(desc).encode()
        m2 = man[:8] + struct.pack("<I", len(raw)) + raw + man[12 + len(a.description_raw):]
        case("description: first source renamed", False, man=m2)
    raw = b"[]"
    case("description: not an object", False, man=man[:8] + struct.pack("<I", 2) + raw + man[12 + len(a.description_raw):])
    hlen, = u("I", buf, 12)
    fields = dict(header_fields(buf[16:16 + hlen]))
    def hdr(**changes):
        f = dict(fields)
        for tag, v in changes.items():
            t = int(tag[1:], 16)
            if v is None:
                f.pop(t, None)
            else:
                f[t] = v
        return reseal(a, buf, key, sk, header=encode_fields(f.items()))
    q = lambda v: struct.pack("<Q", v)
    series = dict(t0010=b"crm-nightly", t0011=q(1), t0012=b"2026-W53", t0013=None)
    out.append(("header: series 1 of 'crm-nightly', period 2026-W53", hdr(**series), True))
    out.append(("header: sequence 2 without previous_archive_digest", hdr(**dict(series, t0011=q(2))), False))
    out.append(("header: sequence 2 with previous_archive_digest", hdr(**dict(series, t0011=q(2), t0013=bytes(32))), True))
    out.append(("header: sequence 1 with previous_archive_digest", hdr(**dict(series, t0013=bytes(32))), False))
    out.append(("header: period 2026-02-29", hdr(**dict(series, t0012=b"2026-02-29")), False))
    out.append(("header: period 2024-02-29", hdr(**dict(series, t0012=b"2024-02-29")), True))
    out.append(("header: period 2026-W54", hdr(**dict(series, t0012=b"2026-W54")), False))
    out.append(("header: series starting with '-'", hdr(**dict(series, t0010=b"-crm")), False))
    out.append(("header: series without sequence and period", hdr(t0010=b"crm", t0011=None, t0012=None, t0013=None), False))
    out.append(("header: backup_mode 2 without base_archive_digest", hdr(**dict(series, t0014=b"\2", t0015=None)), False))
    out.append(("header: backup_mode 4", hdr(t0014=b"\4"), False))
    out.append(("header: base_archive_digest with backup_mode 1", hdr(**dict(series, t0014=b"\1", t0015=bytes(32))), False))
    out.append(("header: retain_until = created - 1", hdr(t0016=struct.pack("<q", a.created - 1)), False))
    out.append(("header: retain_until = created", hdr(t0016=struct.pack("<q", a.created)), True))
    out.append(("header: plaintext sources 0x8002 in v2", hdr(t8002=b"\0\0"), False))
    out.append(("header: unknown critical field 0x0017", hdr(t0017=b""), False))
    out.append(("header: unknown optional field 0x8017", hdr(t8017=b"x"), True))
    return out

def listing_fields(e, version):
    """An entry as `coldarchive list --json` prints it (§15; the v2 fields are this decoder's reading)."""
    name = lambda key, raw: {key: raw.decode("utf-8")} if _utf8(raw) else {key + "Hex": raw.hex()}
    have = {"type": e.type, "mode": f"{e.mode:o}", "size": e.size, "mtime": iso(e.mtime, e.nsec), **name("path", e.path)}
    have.update({"blake2b": e.hash.hex()} if e.type == "file" else {}, **(name("link", e.link) if e.link else {}))
    if version == 2:
        have.update(uid=e.uid, gid=e.gid)
        if e.user_name is not None:
            have.update(name("user", e.user_name))
        if e.group_name is not None:
            have.update(name("group", e.group_name))
        if e.xattrs:
            have["xattrs"] = {n.decode("utf-8", "backslashreplace"): base64.b64encode(v).decode() for n, v in e.xattrs.items()}
        for key, acl in (("acl", e.acl_access), ("defaultACL", e.acl_default)):
            if acl:
                have[key] = ",".join(f"{ACL_TAGS[t]}:{n.decode('utf-8', 'backslashreplace') if t in (2, 8) else ''}:"
                                     + "".join(c if p & bit else "-" for c, bit in (("r", 4), ("w", 2), ("x", 1)))
                                     for t, p, _, n in acl)
    return have

def _utf8(raw):
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False

# A synthetic version 2 archive for what the vectors do not hold: non-UTF-8 names and link targets, a GNU sparse
# 1.0 file, a shrunk file, deleted entries (an incremental archive), a long name, a uid and user name beyond the
# ustar fields, a binary xattr value, an ACL entry without a name, and a negative mtime. Its tar stream is
# written here to FORMAT.md §10 and cross-checked with GNU tar; the archive is sealed with the test keys.

def pax_rec(k, v):
    body = b" %s=%s\n" % (k, v)
    n = len(body) + 1
    while len(b"%d" % n) + len(body) != n:
        n += 1
    return b"%d" % n + body

def ustar(name, flag, mode=0, uid=0, gid=0, size=0, mtime=0, link=b"", uname=b"", gname=b""):
    b = bytearray(512)
    num = lambda v, w: b"%0*o\0" % (w - 1, v) if 0 <= v < 8 ** (w - 1) else (
        b"\x80" + v.to_bytes(w - 1, "big") if v >= 0 else b"\xff" + (v % (1 << (8 * (w - 1)))).to_bytes(w - 1, "big"))
    b[0:len(name[:100])] = name[:100]
    b[100:108], b[108:116], b[116:124] = num(mode, 8), num(min(uid, 0o7777777), 8), num(min(gid, 0o7777777), 8)
    b[124:136], b[136:148], b[156:157] = num(size, 12), num(mtime, 12), flag
    b[157:157 + len(link[:100])] = link[:100]
    b[257:265] = b"ustar\x0000"
    b[265:265 + len(uname[:32])], b[297:297 + len(gname[:32])] = uname[:32], gname[:32]
    b[329:345] = b"0000000\x000000000\x00"
    b[148:156] = b"%06o\0 " % (sum(b[:148]) + 256 + sum(b[156:]))
    return bytes(b)

def synth_entry(e, data=b"", sparse=None):
    """One tar entry as §10 v2 describes it: a pax header with hdrcharset=BINARY, then the ustar header."""
    flag = {"file": b"0", "directory": b"5", "symlink": b"2", "hardlink": b"1"}[e.type]
    name = e.path + (b"/" if e.type == "directory" else b"")
    recs = [(b"hdrcharset", b"BINARY"), (b"mtime", b"%d" % e.mtime if not e.nsec else
             (lambda t: b"%s%d.%09d" % (b"-" if t < 0 else b"", abs(t) // 10**9, abs(t) % 10**9))(e.mtime * 10**9 + e.nsec).rstrip(b"0"))]
    if len(name) > 100 or any(c >= 0x80 for c in name):
        recs.append((b"path", name))
    if len(e.link) > 100:
        recs.append((b"linkpath", e.link))
    if e.uid > 0o7777777:
        recs.append((b"uid", b"%d" % e.uid))
    if e.user_name and len(e.user_name) > 31:
        recs.append((b"uname", e.user_name))
    for n, v in e.xattrs.items():
        recs.append((b"SCHILY.xattr." + n, v))
    if e.acl_access:
        perm = lambda p: b"".join(c if p & bit else b"-" for c, bit in ((b"r", 4), (b"w", 2), (b"x", 1)))
        txt = []
        for t, p, i, n in e.acl_access:
            word = ACL_TAGS[t].encode()
            txt.append(word + b":" + (n or b"%d" % i if t in (2, 8) else b"") + b":" + perm(p) + (b":%d" % i if t in (2, 8) else b""))
        recs.append((b"SCHILY.acl.access", b",".join(txt)))
    size = len(data)
    if sparse is not None:
        m = b"%d\n" % len(sparse) + b"".join(b"%d\n%d\n" % r for r in sparse)
        data = m + bytes(-len(m) % 512) + data
        size = len(data)
        recs += [(b"GNU.sparse.major", b"1"), (b"GNU.sparse.minor", b"0"), (b"GNU.sparse.name", e.path),
                 (b"GNU.sparse.realsize", b"%d" % e.size)]
        name = b"/".join(e.path.split(b"/")[:-1] + [b"GNUSparseFile.0", e.path.split(b"/")[-1]])
        recs = [r for r in recs if r[0] != b"path"] + ([(b"path", name)] if len(name) > 100 or any(c >= 0x80 for c in name) else [])
    pax = b"".join(pax_rec(k, v) for k, v in recs)
    out = ustar(b"PaxHeader/" + name.split(b"/")[-1][:80], b"x", size=len(pax)) + pax + bytes(-len(pax) % 512)
    mode = e.mode & ~0o070 | next(p for t, p, _, _ in e.acl_access if t == 4) << 3 if e.acl_access else e.mode
    out += ustar(name, flag, mode, e.uid, e.gid, size, e.mtime, e.link, e.user_name or b"", e.group_name or b"")
    return out + data + bytes(-len(data) % 512)

def synth_manifest_entry(e):
    recs = []
    recs += [(1, e.user_name)] if e.user_name else []
    recs += [(2, e.group_name)] if e.group_name else []
    recs += [(3, bytes([len(n)]) + n + v) for n, v in e.xattrs.items()]
    acl = lambda a: struct.pack("<H", len(a)) + b"".join(struct.pack("<BBIB", t, p, i, len(n)) + n for t, p, i, n in a)
    recs += [(4, acl(e.acl_access))] if e.acl_access else []
    recs += [(5, acl(e.acl_default))] if e.acl_default else []
    recs += [(6, struct.pack("<Q", e.read_size))] if e.read_size is not None else []
    recs += [(7, struct.pack("<I", len(e.sparse_map)) + b"".join(struct.pack("<QQ", *r) for r in e.sparse_map))] if e.sparse_map else []
    recs.sort()
    body = struct.pack("<BBHIIqIQ", {v: k for k, v in TYPES.items()}[e.type], e.flags, e.mode, e.uid, e.gid, e.mtime, e.nsec, e.size)
    body += e.hash + struct.pack("<QH", e.tar_offset, len(e.path)) + e.path + struct.pack("<H", len(e.link)) + e.link
    body += struct.pack("<H", len(recs)) + b"".join(struct.pack("<BI", t, len(v)) + v for t, v in recs)
    return struct.pack("<I", len(body)) + body

def synthetic(a, buf, key, sk, tweak=lambda entries, contents: None, header_changes=None):
    """Returns (archive bytes, entries, contents by path, tar bytes)."""
    E = lambda type, path, **kw: argparse.Namespace(**dict(dict(type=type, path=path, link=b"", flags=0, mode=0, uid=0, gid=0,
        mtime=1700000000, nsec=0, size=0, hash=bytes(32), tar_offset=0, user_name=b"root", group_name=b"root", xattrs={},
        acl_access=None, acl_default=None, read_size=None, sparse_map=None), **kw))
    holes = [(4096, 512), (131072, 5000), (3 * 65536 + 100, 0)]   # GNU tar needs the final empty region to restore the size
    shrunk = b"x" * 600 + bytes(400)
    contents = {b"s/caf\xe9.bin": b"latin-1 name\n", b"s/holes.img": bytes(range(256)) * 22,
                b"s/long/" + b"n" * 150 + b".txt": b"long name\n", b"s/shrunk.log": shrunk}
    big = b"an-unusually-long-user-name-of-forty-bytes"
    entries = [
        E("directory", b"s", mode=0o755, mtime=1700000000, nsec=5),
        E("file", b"s/caf\xe9.bin", mode=0o640, xattrs={b"user.bin": b"\0\xff\n=x"}),
        E("deleted", b"s/gone", user_name=None, group_name=None, mtime=0),
        E("file", b"s/holes.img", mode=0o664, size=3 * 65536 + 100, sparse_map=holes,
          acl_access=[(1, 6, 0xFFFFFFFF, b""), (2, 6, 1234, b""), (4, 4, 0xFFFFFFFF, b""), (16, 6, 0xFFFFFFFF, b""),
                      (32, 4, 0xFFFFFFFF, b"")]),
        E("directory", b"s/long", mode=0o1777),
        E("file", b"s/long/" + b"n" * 150 + b".txt", mode=0o2750, uid=3000000, gid=42, user_name=big, group_name=None, mtime=-1),
        E("file", b"s/shrunk.log", mode=0o600, flags=3, read_size=600, size=1000),
        E("symlink", b"s/zlink", mode=0o777, link=b"\xff\xfe/../../etc"),
        E("deleted", b"s/zzz-gone", user_name=None, group_name=None, mtime=0),
    ]
    for e in entries:
        if e.type == "deleted":
            e.mode = e.uid = e.gid = e.nsec = 0
        if e.type == "file":
            data = contents[e.path]
            if e.sparse_map:
                full = bytearray(e.size)
                pos = 0
                for off, ln in e.sparse_map:
                    full[off:off + ln] = data[pos:pos + ln]
                    pos += ln
                contents[e.path] = data[:pos]
                e.hash = b2(bytes(full))
            else:
                e.size, e.hash = len(data), b2(data)
    tweak(entries, contents)
    tar = b""
    for e in entries:
        e.tar_offset = len(tar)
        if e.type != "deleted":
            tar += synth_entry(e, contents.get(e.path, b""), e.sparse_map)
    tar += bytes(1024)
    tar += bytes(-len(tar) % 10240)
    desc = json.dumps({"sources": [{"name": "s", "origin": "/srv/s", "kind": "directory"}], "exclude": ["*.tmp"],
                       "one_file_system": True, "host": "synth"}).encode()
    man = b"CAMANIF2" + struct.pack("<I", len(desc)) + desc + b"".join(synth_manifest_entry(e) for e in entries)
    hlen, = u("I", buf, 12)
    fields = {t: v for t, v in header_fields(buf[16:16 + hlen]) if t != 0x8002}
    fields.update({0x10: b"synth", 0x11: struct.pack("<Q", 2), 0x12: b"2026-11", 0x13: bytes(range(32)), 0x14: b"\2",
                   0x15: bytes(range(1, 33)), 0x16: struct.pack("<q", a.created + 86400)})
    for t, v in (header_changes or {}).items():
        fields.pop(t, None) if v is None else fields.__setitem__(t, v)
    car = reseal(a, buf, key, sk, tar=tar, man=man, header=encode_fields(fields.items()), entry_count=len(entries),
                 content_bytes=sum(e.size for e in entries), version=2)
    return car, entries, contents, tar

def check_synthetic(vdir, car, line):
    """The synthetic archive: accepted, extracted as expected, read alike by GNU tar; altered copies refused."""
    import shutil, subprocess, tempfile
    buf = load(os.path.join(vdir, car))
    trusted, keys = read_public(os.path.join(vdir, "keys", "signing.pub")), read_keyring(os.path.join(vdir, "keys"))
    try:
        a, key, _ = open_archive(buf, trusted, keys)
    except FormatError as e:
        line(False, f"synthetic v2: the template {car} is refused ({e})")
        return
    try:
        _, sk = read_secret(os.path.join(vdir, "keys", "signing.key"), 1)
    except (OSError, FormatError) as e:
        line(False, f"synthetic v2: needs keys/signing.key ({e})")
        return
    syn, entries, contents, tar = synthetic(a, buf, key, sk)
    try:
        sa, _, sentries = open_archive(syn, trusted, keys)
        line(True, f"synthetic v2 (from {car}): accepted: incremental header, deleted entries, GNU sparse 1.0, shrunk file, "
             "non-UTF-8 names, pax uid/uname/path, binary xattr, ACL, negative mtime")
    except FormatError as e:
        line(False, f"synthetic v2 (from {car}): {e}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        to = os.path.join(tmp, "x").encode()
        sink = Extractor(to, 2)
        walk_tar(sa, syn, key, sentries, sink)
        sink.close()
        p = lambda rel: os.path.join(to, rel)
        st = {e.path: os.lstat(p(e.path)) for e in entries if e.type != "deleted"}
        holes = open(p(b"s/holes.img"), "rb").read()
        got = [
            ("non-UTF-8 name written as bytes", open(p(b"s/caf\xe9.bin"), "rb").read() == b"latin-1 name\n"),
            ("binary xattr value", os.getxattr(p(b"s/caf\xe9.bin"), b"user.bin") == b"\0\xff\n=x"),
            ("sparse file: size, regions, holes", len(holes) == 3 * 65536 + 100 and holes[4096:4608] == contents[b"s/holes.img"][:512]
             and holes[131072:136072] == contents[b"s/holes.img"][512:] and not holes[:4096].strip(b"\0")),
            ("shrunk file truncated to read_size", os.path.getsize(p(b"s/shrunk.log")) == 600),
            ("symlink target bytes", os.readlink(p(b"s/zlink")) == b"\xff\xfe/../../etc"),
            ("modes incl. setgid and sticky", st[b"s/long"].st_mode & 0o7777 == 0o1777
             and st[b"s/long/" + b"n" * 150 + b".txt"].st_mode & 0o7777 == 0o2750 and st[b"s/holes.img"].st_mode & 0o7777 == 0o664),
            ("negative mtime -1 s", st[b"s/long/" + b"n" * 150 + b".txt"].st_mtime_ns == -10**9),
            ("directory mtime with ns", st[b"s"].st_mtime_ns == 1700000000 * 10**9 + 5),
            ("deleted entries and flags reported", sum("deleted since the base" in r for r in sink.reports) == 2
             and any("shrank" in r for r in sink.reports)),
            ("no deleted path written", not os.path.lexists(p(b"s/gone")) and not os.path.lexists(p(b"s/zzz-gone"))),
        ]
        if os.geteuid() == 0:
            acl = os.getxattr(p(b"s/holes.img"), b"system.posix_acl_access")
            got += [("owner uid 3000000 (pax uid)", st[b"s/long/" + b"n" * 150 + b".txt"].st_uid == 3000000
                     and st[b"s/long/" + b"n" * 150 + b".txt"].st_gid == 42),
                    ("ACL as system.posix_acl_access", acl == acl_xattr(entries[3].acl_access))]
        for what, good in got:
            line(good, f"synthetic v2: extract: {what}")
        # GNU tar, a stock reader, must read the synthetic tar stream the same way (sparse map, names, pax)
        open(os.path.join(tmp, "s.tar"), "wb").write(tar)
        gt = os.path.join(tmp, "g")
        os.mkdir(gt)
        if shutil.which("tar") is None:
            line(False, "synthetic v2: GNU tar is not installed")
            return
        r = subprocess.run(["tar", "--warning=no-unknown-keyword", "-xf", os.path.join(tmp, "s.tar"), "-C", gt],
                           capture_output=True)
        same = r.returncode == 0 and all(open(os.path.join(gt.encode(), e.path), "rb").read() == open(p(e.path), "rb").read()
                                         for e in entries if e.type == "file" and e.read_size is None)
        line(same, "synthetic v2: GNU tar extracts the same file contents (sparse 1.0, non-UTF-8 and long names)"
             + ("" if same else f": {r.stderr.decode(errors='replace')[:300]}"))
    def alt(what, accept=False, **kw):
        try:
            open_archive(synthetic(a, buf, key, sk, **kw)[0], trusted, keys)
            line(accept, f"synthetic v2: {what}: accepted" + ("" if accept else " (should be refused)"))
        except FormatError as e:
            line(not accept, f"synthetic v2: {what}: refused ({e})")
    def set_(i, **kw):
        return lambda es, cs: [setattr(es[i], k, v) for k, v in kw.items()]
    alt("deleted entry in a full archive", header_changes={0x14: b"\1", 0x15: None})
    alt("deleted entry with a mode", tweak=set_(2, mode=0o644))
    alt("read_size >= size", tweak=set_(6, read_size=1000))
    alt("shrank without changed_while_read", tweak=set_(6, flags=2))
    alt("read_size without shrank", tweak=set_(6, flags=1))
    alt("sparse map region past size", tweak=set_(3, sparse_map=[(4096, 512), (3 * 65536 + 100, 5000)]))
    alt("acl_default on a file", tweak=set_(1, acl_default=[(1, 6, 0xFFFFFFFF, b""), (4, 4, 0xFFFFFFFF, b""), (32, 4, 0xFFFFFFFF, b"")]))
    alt("access ACL whose MASK differs from the mode's group bits", tweak=set_(3, mode=0o644))
    alt("xattr system.posix_acl_access as a record", tweak=set_(1, xattrs={b"system.posix_acl_access": b"x"}))
    alt("path component of 256 bytes", tweak=set_(5, path=b"s/long/" + b"n" * 256))
    alt("hardlink to a symlink", tweak=lambda es, cs: es.insert(
        8, argparse.Namespace(**dict(vars(es[7]), type="hardlink", path=b"s/zz", link=b"s/zlink"))))
    def out_of_order(es, cs):
        es[1], es[3] = es[3], es[1]
    alt("entries out of canonical order", tweak=out_of_order)

def check_one(vdir, car, line, skip):
    stem = car[:-len(".car")]
    buf = load(os.path.join(vdir, car))
    try:                                 # (1) §11 and (2) §12
        trusted, keys = read_public(os.path.join(vdir, "keys", "signing.pub")), read_keyring(os.path.join(vdir, "keys"))
        a, key, entries = open_archive(buf, trusted, keys, lambda msg: line(True, f"{car}: {msg}"))
    except FormatError as e:
        line(False, f"{car}: {e}")
        return
    # (3) the manifest against the listing, field by field
    listing = [json.loads(l) for l in open(os.path.join(vdir, stem + ".listing.json"), encoding="utf-8") if l.strip()]
    line(len(listing) == len(entries), f"{car}: listing has {len(listing)} lines for {len(entries)} manifest entries")
    for e, want in zip(entries, listing):
        have = listing_fields(e, a.version)
        want = dict(want, mode=f"{int(want.get('mode', '-1'), 8):o}")   # "0755" and "755" alike
        known = set(have) | {"type", "path", "pathHex", "mode", "size", "mtime", "blake2b", "link", "linkHex"}
        diff = [f"{f} {have.get(f)!r} != {want.get(f)!r}" for f in sorted(known & (set(have) | set(want))) if have.get(f) != want.get(f)]
        line(not diff, f"{car}: listing {esc(e.path)}: " + (", ".join(diff) or "all fields equal"))
        for f in sorted(set(want) - known):
            skip(f"{car}: listing {esc(e.path)}: field {f!r} = {want[f]!r} is not defined by FORMAT.md §15")
    # (3) computed values against the summary
    hx = lambda v: v.hex() if v is not None else None
    have = {"archiveDigest": a.archive_digest.hex(), "headerDigest": a.header_digest.hex(), "chunkCount": a.N,
            "entryCount": len(entries), "contentBytes": sum(e.size for e in entries), "tarBytes": a.tar_bytes,
            "manifestBytes": a.manifest_bytes, "payloadBytes": a.payload_bytes, "fileSize": len(buf),
            "manifestFirstChunk": a.mfc, "label": a.label, "sources": a.sources, "creator": a.creator,
            "signerFingerprint": b2(a.signer_pk, 16).hex(),
            "recipientKeyIDs": [r[1].hex() for r in a.recipients], "archiveID": a.archive_id.hex(),
            "chunkRawSize": a.chunk_raw_size, "created": iso(a.created), "formatVersion": a.version, "suite": a.suite}
    if a.version == 2:
        have.update(series=a.series, sequence=a.sequence, period=a.period, previousArchiveDigest=hx(a.previous_digest),
                    backupMode={None: "full", 1: "full", 2: "incremental", 3: "differential"}[a.backup_mode],
                    baseArchiveDigest=hx(a.base_digest), retainUntil=None if a.retain_until is None else iso(a.retain_until))
        have["sources"] = []             # the plaintext header field, absent in v2 (the names are in the description)
    for f, want in json.load(open(os.path.join(vdir, stem + ".summary.json"), encoding="utf-8")).items():
        if f not in have:
            skip(f"{car}: summary {f} = {want!r} is not defined by FORMAT.md")
            continue
        line(have[f] == want, f"{car}: summary {f}: {have[f]!r}" + ("" if have[f] == want else f" != {want!r}"))
    line(not a.notes, f"{car}: writer conventions (SHOULDs): " + ("; ".join(a.notes) or "none broken"))
    # (4) §10 v2: every entry parses when read from its tar_offset alone
    if a.version == 2:
        bad = []
        for e in entries:
            if e.type == "deleted":
                continue
            c, skip_ = divmod(e.tar_offset, a.chunk_raw_size)
            ds = DataStream(lambda i: open_chunk(a, buf, key, i), a.mfc, a.tar_bytes)
            ds.next, ds.pos = c, c * a.chunk_raw_size
            ds.read(skip_)
            t = read_tar_entry(ds, 2, lambda off: f"random access at {off}")
            if t is None or (t.path.rstrip(b"/") if t.type == "directory" else t.path) != e.path:
                bad.append(esc(e.path))
        line(not bad, f"{car}: §10 random access: every entry parsed from data chunk tar_offset / chunk_raw_size"
             + (f"; failed for {bad}" if bad else ""))
    # (5) tamper self-test on in-memory copies: every one must be refused
    T, hlen, c0, cl = a.trailer_offset, u("I", buf, 12)[0], a.chunks[0], a.chunks[-1]
    def flip(at):
        return buf[:at] + bytes([buf[at] ^ 0x10]) + buf[at + 1:]
    cases = [("bit in the header", flip(16 + hlen // 2)), ("bit in chunk 0", flip(c0[0] + c0[1] // 2)),
             ("bit in the chunk table", flip(T + 96 + 20)), ("bit in the signature", flip(len(buf) - 56 - 30)),
             ("bit in the recipient block", flip(16 + hlen + 30)), ("bit in the footer", flip(len(buf) - 40)),
             ("bit in the manifest chunk", flip(cl[0] + 5)), ("file truncated by one byte", buf[:-1]),
             ("format_version 3 in prelude", patch(buf, 8, b"\3"))]
    for name, bad in cases:
        try:
            open_archive(bad, trusted, keys)
            line(False, f"{car}: tamper: {name}: accepted")
        except FormatError as e:
            line(True, f"{car}: tamper: {name}: refused ({e})")
    try:
        verify(buf, bytes(32))
        line(False, f"{car}: tamper: untrusted signing key: accepted")
    except FormatError as e:
        line(True, f"{car}: tamper: untrusted signing key: refused ({e})")
    # (6) altered plaintexts, re-sealed and re-signed with the test keyring's secret keys
    try:
        _, sk = read_secret(os.path.join(vdir, "keys", "signing.key"), 1)
    except (OSError, FormatError) as e:
        skip(f"{car}: resealed cases need keys/signing.key ({e})")
        return
    for name, alt, accept in mutations(a, buf, key, entries, sk):
        try:
            open_archive(alt, trusted, keys)
            line(accept, f"{car}: resealed: {name}: accepted" + ("" if accept else " (should be refused)"))
        except FormatError as e:
            line(not accept, f"{car}: resealed: {name}: refused ({e})")

def check(vdir):
    counts = [0, 0, 0]
    def line(good, msg):
        counts[not good] += 1
        print(("PASS " if good else "FAIL ") + msg)
    def skip(msg):
        counts[2] += 1
        print("SKIP " + msg)
    cars = sorted(os.path.basename(p) for p in glob.glob(os.path.join(vdir, "vector-v*.car")))
    line("vector-v1.car" in cars, f"vectors found: {', '.join(cars) or 'none'}")
    for car in cars:
        check_one(vdir, car, line, skip)
    if cars:
        check_synthetic(vdir, cars[-1], line)
    parity = os.path.join(vdir, "vector-v2.car.parity")
    if os.path.exists(parity):
        pk = read_public(os.path.join(vdir, "keys", "signing.pub"))
        try:
            x = check_parity(os.path.join(vdir, "vector-v2.car"), parity, pk, say=lambda msg: line(True, "vector-v2.car.parity: " + msg))
            side = load(parity)
            damaged = bytearray(side)
            damaged[100] ^= 1                        # the first index copy: the second must serve
            line(parse_parity(bytes(damaged), pk).digest == x.digest, "vector-v2.car.parity: a damaged first index, read from its second copy")
            damaged[x.index_length + x.T * x.m * x.L + 100] ^= 1
            try:
                parse_parity(bytes(damaged), pk)
                line(False, "vector-v2.car.parity: both index copies damaged, yet accepted")
            except FormatError as e:
                line("signature" in str(e), f"vector-v2.car.parity: both index copies damaged, refused ({e})")
        except FormatError as e:
            line(False, f"vector-v2.car.parity: {e}")
    else:
        skip("vector-v2.car.parity not found")
    journal = os.path.join(vdir, "journal-v1.log")
    if os.path.exists(journal):
        pk = read_public(os.path.join(vdir, "keys", "signing.pub"))
        try:
            records = check_journal(journal, pk)
            line(True, f"journal-v1.log: {len(records)} records verify and chain")
        except FormatError as e:
            line(False, f"journal-v1.log: {e}")
        import tempfile
        data = open(journal, "rb").read()
        for what, bad in (("an edited record", data.replace(b'"event":"series-created"', b'"event":"series-created" ', 1)),
                          ("a removed record", b"\n".join(data.split(b"\n")[:1] + data.split(b"\n")[2:]))):
            with tempfile.NamedTemporaryFile(suffix=".log") as f:
                f.write(bad)
                f.flush()
                try:
                    check_journal(f.name, pk)
                    line(False, f"journal-v1.log with {what} was accepted")
                except FormatError as e:
                    line(True, f"journal-v1.log with {what} refused: {e}")
    return counts

def check_journal(path, trusted_pk):   # §19: RECORD_JSON TAB base64(Ed25519), chained by n and prev
    fingerprint = b2(trusted_pk, 16).hex()
    data = open(path, "rb").read()
    need(data.endswith(b"\n"), f"§19: {path}: the last line does not end in LF")
    prev, records = b"", []
    for number, line in enumerate(data[:-1].split(b"\n"), 1):
        where = f"§19: {path} line {number}"
        need(line.count(b"\t") == 1, f"{where}: not RECORD_JSON TAB SIGNATURE")
        body, sig = line.split(b"\t")
        try:
            signature = base64.b64decode(sig, validate=True)
            record = json.loads(body.decode("utf-8"), parse_constant=no_constant)
        except ValueError as e:
            raise FormatError(f"{where}: {e}")
        need(len(signature) == 64 and isinstance(record, dict), f"{where}: malformed")
        need(record.get("signer") == fingerprint, f"{where}: signed by {record.get('signer')}, not the trusted key {fingerprint}")
        try:
            nacl.signing.VerifyKey(trusted_pk).verify(b"coldarchive journal v1\x00" + body, signature)
        except nacl.exceptions.BadSignatureError:
            raise FormatError(f"{where}: the signature does not verify")
        need(record.get("n") == number, f"{where}: n is {record.get('n')}, not {number}")
        need(record.get("prev") == (b2(prev).hex() if number > 1 else "0" * 64), f"{where}: prev does not hash the line before")
        need(isinstance(record.get("event"), str) and isinstance(record.get("time"), str), f"{where}: no event or time")
        prev = line
        records.append(record)
    need(records and records[0]["event"] == "vault-created", f"§19: {path}: the first record is not vault-created")
    return records

# ---------------------------------------------------------------------------------------------------------
# §20: restoring a chain (a full and the incrementals after it, or a differential)

def find_chain(target, trusted_pk, keys):
    """§20.1: from the target, follow base_archive_digest among the archives beside it to a full; every one is
    opened with all the checks of a restore (§11, §12). Returns [(a, buf, key, entries)], oldest first."""
    by_digest, chain = {}, []
    for path in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(target)), "*.car"))):
        try:
            a = verify(load(path), trusted_pk)
        except (FormatError, OSError):
            continue                     # a damaged neighbour matters only if the chain needs it: then it is missing
        by_digest[a.archive_digest] = path
    path = target
    while True:
        buf = load(path)
        a, key, entries = open_archive(buf, trusted_pk, keys)
        chain.insert(0, (a, buf, key, entries))
        if a.backup_mode in (None, 1):
            break
        base = by_digest.get(a.base_digest)
        need(base is not None, f"§20.1: the base of {path} (archive digest {a.base_digest.hex()[:16]}…) is not beside it, or does not verify")
        b = verify(load(base), trusted_pk)
        need(b.series == a.series and b.sequence < a.sequence, f"§20.1: {base} is not an earlier archive of {path}'s series")
        need(a.backup_mode != 3 or b.backup_mode in (None, 1), f"§20.1: the base of the differential {path} is not a full")
        path = base
    return chain

def merge_chain(chain):
    """§20.2-3, applied archive by archive, oldest first (for each path the newest entry counts): a deleted entry
    removes the path and what is below it; any other entry that is not a directory removes what is below it.
    Returns {path: (archive index, entry)}."""
    tree, children = {}, {}              # children: directory path -> the paths directly below it in tree
    def drop_below(path):
        stack = list(children.pop(path, ()))
        while stack:
            p = stack.pop()
            tree.pop(p, None)
            stack.extend(children.pop(p, ()))
    for i, (a, _, _, entries) in enumerate(chain):
        for e in entries:
            if e.type != "directory":
                drop_below(e.path)
            if e.type == "deleted":
                if tree.pop(e.path, None) is not None:
                    children.get(e.path.rpartition(b"/")[0], set()).discard(e.path)
            else:
                tree[e.path] = (i, e)
                if b"/" in e.path:
                    children.setdefault(e.path.rpartition(b"/")[0], set()).add(e.path)
    for p, (i, e) in tree.items():     # §20.3: a hardlink's file is of its own archive, not replaced since
        if e.type == "hardlink":
            need(tree.get(e.link, (None, None))[0] == i, f"§20.3: {esc(p)} links to {esc(e.link)}, which a later archive replaced")
    return tree

class ChainSink:
    """Writes through an Extractor only the entries the merged tree takes from this archive (directories are
    made beforehand, from the merged tree)."""
    def __init__(self, ext, tree, i):
        self.ext, self.tree, self.i = ext, tree, i
    def wanted(self, e):
        return e.type != "directory" and self.tree.get(e.path, (None, None))[0] == self.i and self.tree[e.path][1] is e
    def create(self, e):
        return self.ext.create(e) if self.wanted(e) else None
    def finish(self, e, out):
        if self.wanted(e):
            self.ext.finish(e, out)
    def deleted(self, e):
        pass

def extract_chain(target, trusted_pk, keys, to):
    chain = find_chain(target, trusted_pk, keys)             # every archive checked before anything is written
    tree = merge_chain(chain)
    ext = Extractor(to, 2)
    order = sorted(tree, key=lambda p: p.replace(b"/", b"\0"))   # §8 canonical order: '/' sorts below every byte
    for p in order:
        if tree[p][1].type == "directory":
            ext.finish(tree[p][1], None)
    for i, (a, buf, key, entries) in enumerate(chain):
        walk_tar(a, buf, key, entries, ChainSink(ext, tree, i))
    ext.close()
    return chain, tree, ext

# --check-parity: a parity sidecar (§21), from that section alone
GF_EXP, GF_LOG = [0] * 512, [0] * 256
_x = 1
for _i in range(255):                    # GF(2^8), x^8 + x^4 + x^3 + x^2 + 1
    GF_EXP[_i], GF_LOG[_x] = _x, _i
    _x <<= 1
    if _x & 0x100:
        _x ^= 0x11D
for _i in range(255, 512):
    GF_EXP[_i] = GF_EXP[_i - 255]

def gf_mul(a, b):
    return 0 if a == 0 or b == 0 else GF_EXP[GF_LOG[a] + GF_LOG[b]]

def gf_inv(a):
    if a == 0:
        raise FormatError("the inverse of 0 was asked for")
    return GF_EXP[255 - GF_LOG[a]]

_MUL_TABLES = {}
def gf_scale(c, data):                   # c · data, bytewise, through a 256-entry table
    if c not in _MUL_TABLES:
        _MUL_TABLES[c] = bytes(gf_mul(c, v) for v in range(256))
    return data.translate(_MUL_TABLES[c])

def xor_bytes(a, b):
    return (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(len(a), "little")

def cauchy_row(k, r):                    # row k + r of [I; A]: A[r][c] = inverse((k + r) XOR c)
    return [gf_inv((k + r) ^ c) for c in range(k)]

def gf_invert(m):                        # Gauss-Jordan over GF(2^8)
    n = len(m)
    a = [row[:] + [int(i == j) for j in range(n)] for i, row in enumerate(m)]
    for col in range(n):
        pivot = next((r for r in range(col, n) if a[r][col]), None)
        if pivot is None:
            raise FormatError("a singular matrix: the rows chosen are not independent")
        a[col], a[pivot] = a[pivot], a[col]
        inv = gf_inv(a[col][col])
        a[col] = [gf_mul(inv, v) for v in a[col]]
        for r in range(n):
            if r != col and a[r][col]:
                f = a[r][col]
                a[r] = [v ^ gf_mul(f, w) for v, w in zip(a[r], a[col])]
    return [row[n:] for row in a]

def parse_parity(side, trusted_pk):
    """§21: the first index copy that passes every rule and whose signature verifies (else the second)."""
    def index_at(off):
        h = side[off:off + 112]
        if len(h) < 112 or h[:8] != b"CAPARIT1":
            raise FormatError("parity index: bad magic")
        version, flags, reserved = struct.unpack_from("<HHI", h, 8)
        if version != 1:
            raise FormatError(f"parity version {version} is not 1")
        if flags or reserved:
            raise FormatError("parity index: flags or reserved bytes not zero")
        x = argparse.Namespace(digest=h[16:48])
        x.size, x.S, x.m, x.L, x.n, x.T = struct.unpack_from("<QIIQII", h, 48)
        x.signer = h[80:112]
        if not (x.S & (x.S - 1) == 0 and 4096 <= x.S <= 1 << 20):
            raise FormatError(f"slice_size {x.S}")
        if not (x.L % x.S == 0 and x.S <= x.L <= 1 << 30):
            raise FormatError(f"column_length {x.L}")
        if not (1 <= x.size <= 1 << 52) or x.n != -(-x.size // x.L):
            raise FormatError("archive_size or column_count out of range")
        if not (1 <= x.T <= x.n):
            raise FormatError(f"stripe_count {x.T}")
        x.k = lambda t: -(-(x.n - t) // x.T)
        if not (x.m >= 1 and x.k(0) + x.m <= 255):
            raise FormatError("parity_count breaks k + m <= 255")
        x.G = x.L // x.S
        x.D = -(-x.size // x.S)
        x.index_length = 112 + 16 * (x.D + x.T * x.m * x.G) + 64
        if len(side) != 2 * x.index_length + x.T * x.m * x.L + 16:
            raise FormatError("the sidecar's length does not match its index")
        body = side[off:off + x.index_length]
        try:
            nacl.signing.VerifyKey(trusted_pk).verify(b"coldarchive/v1/parity-signature" + b2(body[:-64]), body[-64:])
        except nacl.exceptions.BadSignatureError:
            raise FormatError("parity index signature does not verify with the trusted key")
        if x.signer != trusted_pk:
            raise FormatError("parity index names another signer")
        x.data_hashes = [body[112 + 16 * j:128 + 16 * j] for j in range(x.D)]
        p0 = 112 + 16 * x.D
        x.parity_hashes = [body[p0 + 16 * j:p0 + 16 * j + 16] for j in range(x.T * x.m * x.G)]
        return x
    try:
        return index_at(0)
    except FormatError as first:
        if side[-16:-8] != b"CAPARTL1":
            raise
        length = struct.unpack("<Q", side[-8:])[0]
        if length > len(side):
            raise first
        return index_at(len(side) - 16 - length)

def parity_column(x, buf, i):            # column i, zero-padded to L
    c = buf[i * x.L:(i + 1) * x.L]
    return c + bytes(x.L - len(c))

def parity_stripe(x, buf, t):            # the data columns of stripe t, by position
    return [parity_column(x, buf, c * x.T + t) for c in range(x.k(t))]

def parity_rows(x, cols):                # the m parity columns of one stripe
    k = len(cols)
    rows = []
    for r in range(x.m):
        acc = bytes(x.L)
        for c, a in enumerate(cauchy_row(k, r)):
            acc = xor_bytes(acc, gf_scale(a, cols[c]))
        rows.append(acc)
    return rows

def parity_of(x, side, t, r):
    off = x.index_length + (t * x.m + r) * x.G * x.S
    return side[off:off + x.L]

def rebuild_columns(x, buf, side, t, lost):
    """Rebuilds the data columns at positions `lost` of stripe t from k intact rows (§21 "Code")."""
    cols = parity_stripe(x, buf, t)
    k = len(cols)
    if len(lost) > x.m:
        raise FormatError(f"{len(lost)} lost columns, {x.m} parity columns")
    rows = [(c, cols[c]) for c in range(k) if c not in lost] + [(k + r, parity_of(x, side, t, r)) for r in range(x.m)]
    rows = rows[:k]
    matrix = [[int(row == c) for c in range(k)] if row < k else cauchy_row(k, row - k) for row, _ in rows]
    inverse = gf_invert(matrix)
    out = {}
    for e in lost:
        acc = bytes(x.L)
        for coef, (_, data) in zip(inverse[e], rows):
            acc = xor_bytes(acc, gf_scale(coef, data))
        out[e] = acc
    return out

def check_parity(archive_path, side_path, trusted_pk, say=print):
    """Checks a sidecar against its archive: index, signature, every slice hash, every parity slice
    recomputed; then rebuilds up to m lost columns of every stripe from the parity and compares."""
    buf, side = load(archive_path), load(side_path)
    x = parse_parity(side, trusted_pk)
    a = verify(buf, trusted_pk)
    if a.archive_digest != x.digest or len(buf) != x.size:
        raise FormatError("the parity was made for another archive (digest or size)")
    for j in range(x.D):
        if b2(buf[j * x.S:(j + 1) * x.S], 16) != x.data_hashes[j]:
            raise FormatError(f"data slice {j} does not match its hash")
    say(f"index OK: {x.D} slices of {x.S} bytes, {x.n} columns of {x.L} bytes, {x.T} stripes, {x.m} parity columns each")
    for t in range(x.T):
        for r, row in enumerate(parity_rows(x, parity_stripe(x, buf, t))):
            if row != parity_of(x, side, t, r):
                raise FormatError(f"parity column {r} of stripe {t} is not the Cauchy code of its stripe")
            for g in range(x.G):
                if b2(row[g * x.S:(g + 1) * x.S], 16) != x.parity_hashes[(t * x.m + r) * x.G + g]:
                    raise FormatError(f"parity slice {g} of column {r}, stripe {t} does not match its hash")
    say("parity OK: every parity column recomputed from the archive")
    for t in range(x.T):
        k = x.k(t)
        lost = list(range(0, k, max(1, k // x.m)))[:x.m]
        cols = parity_stripe(x, buf, t)
        for e, col in rebuild_columns(x, buf, side, t, lost).items():
            if col != cols[e]:
                raise FormatError(f"column {e} of stripe {t} was not rebuilt")
    say(f"rebuild OK: {x.m} lost columns of each stripe rebuilt from the parity")
    return x

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", metavar="VECTORS_DIR")
    mode.add_argument("--verify", metavar="ARCHIVE")
    mode.add_argument("--extract", metavar="ARCHIVE")
    mode.add_argument("--extract-chain", metavar="ARCHIVE", help="restore the tree ARCHIVE leaves, through its chain (§20), "
                      "finding its bases among the archives beside it")
    mode.add_argument("--journal", metavar="JOURNAL", help="check a vault journal (§19) against --trust")
    mode.add_argument("--check-parity", metavar="ARCHIVE", help="check ARCHIVE.parity (§21) against ARCHIVE and --trust: "
                      "index, signature, every parity column recomputed, lost columns rebuilt")
    ap.add_argument("--trust", metavar="SIGNING_PUB", help="trusted signing key (default for --extract: KEYDIR/signing.pub)")
    ap.add_argument("--keyring", metavar="KEYDIR")
    ap.add_argument("--to", metavar="DIR")
    args = ap.parse_args()
    if (args.verify or args.journal or args.check_parity) and not args.trust or (args.extract or args.extract_chain) and not (args.keyring and args.to):
        ap.error("--verify needs --trust; --extract and --extract-chain need --keyring and --to")
    try:
        if args.check:
            passed, failed, skipped = check(args.check)
            print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
            return int(failed > 0)
        if args.check_parity:
            check_parity(args.check_parity, args.check_parity + ".parity", read_public(args.trust))
            return 0
        if args.journal:
            records = check_journal(args.journal, read_public(args.trust))
            print(f"journal OK: {len(records)} records, events: {', '.join(r['event'] for r in records)}")
            return 0
        if args.verify:
            a = verify(load(args.verify), read_public(args.trust), print)
            print(f"archive OK: format version {a.version}, archive_digest {a.archive_digest.hex()}")
            return 0
        trusted = read_public(args.trust or os.path.join(args.keyring, "signing.pub"))
        if args.extract_chain:
            chain, tree, ext = extract_chain(args.extract_chain, trusted, read_keyring(args.keyring), args.to)
            print("\n".join(["report: " + r for r in ext.reports]
                            + [f"extracted {len(tree)} entries to {args.to} through a chain of {len(chain)} archives"]))
            return 0
        buf = load(args.extract)
        a, key, entries = open_archive(buf, trusted, read_keyring(args.keyring))   # all checks before writing
        sink = Extractor(args.to, a.version)
        walk_tar(a, buf, key, entries, sink)
        sink.close()
        print("\n".join(["note: " + n for n in a.notes] + ["report: " + r for r in sink.reports]
                        + [f"extracted {len(entries)} entries to {args.to}"]))
        return 0
    except FormatError as e:
        print(f"refused: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

if __name__ == "__main__":
    sys.exit(main())
