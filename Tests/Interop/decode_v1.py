#!/usr/bin/python3
"""Independent decoder/verifier for the coldarchive archive format, version 1, written from docs/FORMAT.md
alone (every § below is a FORMAT.md section). Needs Debian's python3 with python3-nacl and python3-zstandard.

  decode_v1.py --check VECTORS_DIR                          verify, decrypt and compare the test vectors
  decode_v1.py --verify ARCHIVE --trust SIGNING_PUB         the keyless check of §11
  decode_v1.py --extract ARCHIVE --keyring KEYDIR --to DIR  verify (§11, §12), then unpack the tar stream
"""
import argparse, base64, datetime, glob, hashlib, hmac, io, json, os, re, struct, sys, tarfile, unicodedata
import nacl.bindings as sodium, nacl.exceptions, nacl.signing, zstandard

MAX_FILE = 1 << 30                       # archives are read whole: refuse bigger ones
TYPES = {1: "file", 2: "directory", 3: "symlink", 4: "hardlink"}
TAR_TYPES = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "directory",
             tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink"}
FIXED = {1: 2, 2: 16, 3: 8, 4: 4, 5: 16, 6: 32, 7: 32}    # §5: the required fields and their sizes
DCTX = zstandard.ZstdDecompressor(max_window_size=1 << 25)  # §8: refuse windows over 2^25 bytes

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

def verify(buf, trusted_pk, ok=lambda msg: None):
    """§11 steps 1-6 on the whole file. Returns the parsed archive (a namespace) or raises FormatError."""
    buf, a = bytes(buf), argparse.Namespace(notes=[])   # notes: departures from conventions that are not MUSTs
    need(len(buf) >= 16 + 56, "§3: file shorter than a prelude and a footer")
    f = buf[-56:]                        # §11.1, §9: the footer
    need(f[:8] == b"CAFOOTR1", "§9 footer: bad footer_magic")
    need(hmac.compare_digest(f[40:], b2(f[:40], 16)), "§9 footer: footer_checksum mismatch")
    need(u("H", f, 8)[0] == 1 and f[10:16] == bytes(6), "§9 footer: format_version != 1 or reserved bytes set")
    a.payload_offset, a.trailer_offset, a.trailer_length = u("3Q", f, 16)
    need(a.trailer_offset + a.trailer_length + 56 == len(buf), "§3: file_size != trailer_offset + trailer_length + 56")
    ok("§11.1 footer: magic, checksum, version, file size")
    need(buf[:8] == b"\x89CAR\r\n\x1a\n", "§4 prelude: bad magic")        # §11.2, §4: the prelude
    version, flags, hlen = u("HHI", buf, 8)
    need(version == 1, f"§4 prelude: format_version {version} is not implemented")
    need(flags == 0 and 1 <= hlen <= 1 << 20 and 16 + hlen + 4 <= len(buf), "§4 prelude: bad flags or header_length")
    parse_header(a, buf[16:16 + hlen])
    a.header_digest = b2(buf[:16 + hlen])
    ok("§11.2 prelude and §5 header field rules")
    r = 16 + hlen                        # §6: the recipient block
    rlen, = u("I", buf, r)
    need(66 <= rlen <= 1 << 20 and r + 4 + rlen <= len(buf), "§6: recipients_length out of range")
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
        a.chunks.append((off, sl, rl, t[104 + 40 * i:136 + 40 * i]))
        off += sl
        if rl != n and i not in (a.mfc - 1, a.N - 1):
            a.notes.append(f"§8: chunk {i} is short but not the last of its section")
    need(off - a.payload_offset == a.payload_bytes, "§9: Σ sealed_len != payload_bytes")
    need(sum(c[2] for c in a.chunks[:a.mfc]) == a.tar_bytes, "§9: Σ raw_len of the data chunks != tar_bytes")
    need(sum(c[2] for c in a.chunks[a.mfc:]) == a.manifest_bytes, "§9: Σ raw_len of the manifest chunks != manifest_bytes")
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

def parse_header(a, h):                  # §5: tag u16 || length u32 || value, tags strictly increasing
    pos, last, fields = 0, -1, {}
    while pos < len(h):
        need(pos + 6 <= len(h), "§5 header: truncated field")
        tag, length = u("HI", h, pos)
        need(tag > last, f"§5 header: tag {tag:#06x} out of order or repeated")
        need(pos + 6 + length <= len(h), f"§5 header: field {tag:#06x} runs past header_length")
        last, fields[tag], pos = tag, h[pos + 6:pos + 6 + length], pos + 6 + length
        need(FIXED.get(tag, length) == length, f"§5 header: field {tag:#06x} has length {length}")
        need(tag in FIXED or tag & 0x8000, f"§5 header: unknown critical field {tag:#06x}")
    need(all(t in fields for t in FIXED), "§5 header: a required field is missing")
    a.suite, a.archive_id, a.created, a.chunk_raw_size = u("H", fields[1])[0], fields[2], u("q", fields[3])[0], u("I", fields[4])[0]
    need(a.suite == 1 and 4096 <= a.chunk_raw_size <= 1 << 24, "§5 header: bad suite or chunk_raw_size")
    a.nonce_prefix, a.payload_salt, a.signer_pk = fields[5], fields[6], fields[7]
    a.label = text(fields[0x8001], "§5 label") if 0x8001 in fields else None
    a.creator = text(fields[0x8003], "§5 creator") if 0x8003 in fields else None
    a.sources, s, p = None, fields.get(0x8002), 2
    if s is not None:                    # u16 count, then count × (u16 length, UTF-8 name), nothing after
        need(len(s) >= 2 and u("H", s)[0] <= 1024, "§5 sources: missing or too large count")
        a.sources = []
        for _ in range(u("H", s)[0]):
            need(p + 2 <= len(s) and p + 2 + u("H", s, p)[0] <= len(s), "§5 sources: a name runs past the field")
            a.sources.append(text(s[p + 2:p + 2 + u("H", s, p)[0]], "§5 sources name"))
            p += 2 + u("H", s, p)[0]
        need(p == len(s), "§5 sources: bytes after the last name")

def unwrap(a, keys):
    """§12.2, §7: open file_key with a keyring key, check header_mac, return payload_key."""
    for rtype, key_id, wrapped in a.recipients:
        if rtype == 1 and key_id in keys:
            try:
                file_key = sodium.crypto_box_seal_open(wrapped, *keys[key_id])
            except nacl.exceptions.CryptoError:
                raise FormatError(f"§6: the wrapped_key for {key_id.hex()} does not open") from None
            need(len(file_key) == 32, "§7: file_key is not 32 bytes")
            mac_key = b2(b"coldarchive/v1/header-mac-key" + a.payload_salt, key=file_key)
            need(hmac.compare_digest(b2(a.mac_input, key=mac_key), a.header_mac), "§7: header_mac mismatch")
            return b2(b"coldarchive/v1/payload-key" + a.payload_salt, key=file_key)
    raise FormatError("§12.2: no recipient entry matches a key of the keyring")

def open_chunk(a, buf, key, i):
    """§8: decrypt chunk i and decompress its one zstd frame."""
    off, sl, rl, _ = a.chunks[i]
    nonce = a.nonce_prefix + struct.pack("<Q", i | (int(i == a.N - 1) << 63))
    try:
        frame = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            bytes(buf[off:off + sl]), a.header_digest + bytes([int(i >= a.mfc)]), nonce, key)
        need(zstandard.get_frame_parameters(frame).content_size == rl, f"§8: chunk {i}: frame does not declare raw_len")
        d = DCTX.decompressobj()
        raw = d.decompress(frame)
    except nacl.exceptions.CryptoError:
        raise FormatError(f"§8: chunk {i}: AEAD decryption fails") from None
    except zstandard.ZstdError as e:
        raise FormatError(f"§8: chunk {i}: zstd: {e}") from None
    need(d.eof and not d.unused_data and len(raw) == rl, f"§8: chunk {i}: not one frame of raw_len bytes")
    return raw

def read_manifest(a, buf, key):
    """§8 manifest section, §12.3, and the path rules of §10 and §12.4. Returns the entries."""
    m = b"".join(open_chunk(a, buf, key, i) for i in range(a.mfc, a.N))
    need(m[:8] == b"CAMANIF1", "§8 manifest: bad magic")
    p, entries, kinds, last_child = 8, [], {}, {}
    for k in range(a.entry_count):
        n = u("I", m, p)[0] if p + 4 <= len(m) else 0
        need(59 <= n <= 8251 and p + 4 + n <= len(m), f"§8 manifest entry {k}: missing or bad entry_length")
        e, p = m[p + 4:p + 4 + n], p + 4 + n
        t, mode, mtime, nsec, size, h, pl = u("BHqIQ32sH", e)
        ll = u("H", e, 57 + pl)[0] if 59 + pl <= n else 0
        need(59 + pl + ll == n, f"§8 manifest entry {k}: entry_length does not match path_len and link_len")
        x = argparse.Namespace(type=TYPES.get(t), mode=mode, mtime=mtime, nsec=nsec, size=size, hash=h,
                               path=text(e[57:57 + pl], f"§8 entry {k} path"), link=text(e[59 + pl:], f"§8 entry {k} link"))
        where, parts = f"§8 manifest entry {k} ({x.path})", x.path.split("/")
        need(x.type and mode <= 0o777 and nsec < 10**9, f"{where}: bad entry_type, mode or mtime_nsec")
        need(x.type == "file" or (size == 0 and h == bytes(32)), f"{where}: a non-file with size or content_hash")
        need((x.link != "") == (x.type in ("symlink", "hardlink")), f"{where}: link where none belongs, or missing")
        need(x.path and not x.path.startswith("/") and all(c not in ("", ".", "..") for c in parts),
             f"{where}: empty or absolute path, or an empty, '.' or '..' component")
        need(x.path not in kinds, f"{where}: duplicate path")
        parent = "/".join(parts[:-1])    # §10: a directory entry precedes everything inside it, so no path
        need(not parent or kinds.get(parent) == "directory", f"{where}: parent is not an earlier directory")
        if x.type == "symlink":          # §10: relative; resolved from its directory, stays in the tree
            need(not x.link.startswith("/"), f"{where}: absolute symlink target")
            depth = len(parts) - 1
            for c in x.link.split("/"):
                depth += -1 if c == ".." else c not in ("", ".")
                need(depth >= 0, f"{where}: symlink target leaves the tree")
        need(x.type != "hardlink" or kinds.get(x.link) == "file", f"{where}: hardlink to other than an earlier file")
        if parts[-1].encode() <= last_child.get(parent, b""):
            a.notes.append(f"§10: {x.path} is not in bytewise order among its siblings")
        last_child[parent], kinds[x.path] = parts[-1].encode(), x.type
        entries.append(x)
    need(p == len(m), "§8 manifest: bytes after entry_count entries")
    need(sum(x.size for x in entries) == a.content_bytes, "§12.3: Σ size != content_bytes")
    if a.sources is not None and [x.path for x in entries if "/" not in x.path] != a.sources:
        a.notes.append("§10: the top-level entries are not the header's sources")
    return entries

class DataStream(io.RawIOBase):
    """§8: the data section as one byte stream, opening chunks 0 … manifest_first_chunk-1 as needed."""
    def __init__(self, opener, count):
        self.opener, self.count, self.next, self.cur, self.at, self.pos = opener, count, 0, b"", 0, 0
        self.tail, self.tail_start = bytearray(), 0   # the last 64 KiB handed out, to check the end padding
    def readable(self):
        return True
    def readinto(self, b):
        if self.at == len(self.cur):
            if self.next == self.count:
                return 0
            self.cur, self.at, self.next = self.opener(self.next), 0, self.next + 1
        n = min(len(b), len(self.cur) - self.at)
        b[:n] = self.cur[self.at:self.at + n]
        self.tail += b[:n]
        self.at, self.pos = self.at + n, self.pos + n
        if len(self.tail) > 1 << 16:
            self.tail_start += len(self.tail) - (1 << 16)
            del self.tail[:-(1 << 16)]
        return n

def tar_mtime(ti):                       # §10: pax mtime "seconds[.fraction]"; the ustar field without it
    s = ti.pax_headers.get("mtime")
    if s is None:
        return int(ti.mtime), 0
    m = re.fullmatch(r"(-?)(\d+)(?:\.(\d{0,9}))?", s)
    need(m, f"§10: pax mtime {s!r} is not seconds with at most 9 fractional digits")
    ns = int(m[2]) * 10**9 + int((m[3] or "").ljust(9, "0"))
    return divmod(-ns if m[1] else ns, 10**9)

def nfc(name):
    return unicodedata.normalize("NFC", name)

def walk_tar(a, buf, key, entries, sink=None):
    """§12.4-5: read the tar stream, check entry k against manifest entry k; a sink writes entries out."""
    ds, k = DataStream(lambda i: open_chunk(a, buf, key, i), a.mfc), 0
    try:
        tf = tarfile.open(fileobj=ds, mode="r|", encoding="utf-8", errors="strict")
        for ti in tf:                    # tarfile drops a directory name's trailing "/"
            need(k < len(entries), "§12.5: the tar stream has more entries than the manifest")
            e, k = entries[k], k + 1
            where = f"§12.4 tar entry {k - 1} ({e.path})"
            # §12: tar names and link targets match the manifest's up to canonical equivalence; the manifest's are written
            need(nfc(ti.name) == nfc(e.path) and TAR_TYPES.get(ti.type) == e.type and ti.sparse is None,
                 f"{where}: tar name {ti.name!r} or type {ti.type!r} differs")
            need(ti.mode == e.mode and ti.size == e.size, f"{where}: tar mode {ti.mode:o} or size {ti.size} differs")
            need(tar_mtime(ti) == (e.mtime, e.nsec), f"{where}: tar mtime {tar_mtime(ti)} differs")
            need(nfc(ti.linkname) == nfc(e.link), f"{where}: tar link target {ti.linkname!r} differs")
            if ti.uid or ti.gid or ti.uname or ti.gname:
                a.notes.append(f"§10: {e.path} stores an owner")
            out = sink.create(e) if sink and e.type == "file" else None
            if e.type == "file":
                src, h = tf.extractfile(ti), hashlib.blake2b(digest_size=32)
                while piece := src.read(1 << 20):
                    h.update(piece)
                    out and out.write(piece)
                need(h.digest() == e.hash, f"{where}: content BLAKE2b-256 differs from the manifest")
            if sink:
                sink.finish(e, out)
    except (tarfile.TarError, UnicodeError) as err:
        raise FormatError(f"§10: tar stream: {err}") from None
    need(k == len(entries), f"§12.5: the tar stream ended after {k} of {len(entries)} manifest entries")
    # §10: two zero end-of-archive blocks, then only zero padding up to tar_bytes; §12.5: every data chunk opened
    need(ds.tail_start <= tf.offset <= a.tar_bytes - 1024, "§10: no end-of-archive blocks after the last entry")
    need(not ds.tail[tf.offset - ds.tail_start:].strip(b"\0"), "§10: non-zero bytes after the last tar entry")
    while piece := ds.read(1 << 20):
        need(not piece.strip(b"\0"), "§10: non-zero bytes after the last tar entry")
    need(ds.pos == a.tar_bytes and ds.next == a.mfc, "§12.5: not every data chunk was opened")

class Extractor:
    """Creates entries under root, never over existing files; directory modes and times are set last."""
    def __init__(self, root):
        self.root, self.dirs = root, []
    def path(self, p):
        return os.path.join(self.root, *p.split("/"))
    def create(self, e):
        return open(os.open(self.path(e.path), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600), "wb")
    def finish(self, e, out):
        path, ns = self.path(e.path), (e.mtime * 10**9 + e.nsec,) * 2
        if e.type == "file":
            out.close()
            os.chmod(path, e.mode)
            os.utime(path, ns=ns)
        elif e.type == "directory":
            os.mkdir(path, 0o700)
            self.dirs.append((path, e.mode, ns))
        elif e.type == "symlink":
            os.symlink(e.link, path)
            os.utime(path, ns=ns, follow_symlinks=False)
        else:
            os.link(self.path(e.link), path)
    def close(self):
        for path, mode, ns in reversed(self.dirs):
            os.chmod(path, mode)
            os.utime(path, ns=ns)

def read_public(path):                   # §14: "coldarchive-signing-ed25519 BASE64"; '#' starts a comment
    lines = [l.split() for l in open(path, encoding="utf-8") if l.strip() and not l.startswith("#")]
    need(len(lines) == 1 and len(lines[0]) == 2 and lines[0][0] == "coldarchive-signing-ed25519",
         f"§14: {path}: not a signing public key file")
    try:
        key = base64.b64decode(lines[0][1], validate=True)
    except ValueError:
        key = b""
    need(len(key) == 32, f"§14: {path}: the key is not 32 bytes of base64")
    return key

def read_keyring(keydir):
    """§14: secret key files KEYDIR/encryption/*.key -> {key_id: (public key, secret key)}."""
    keys = {}
    for path in sorted(glob.glob(os.path.join(keydir, "encryption", "*.key"))):
        d = open(path, "rb").read()      # "CASECKEY" 1 kind protection 0 created[8] public[32] len[2] secret sum[32]
        need(len(d) == 118 and d[:12] == b"CASECKEY\x01\x02\x00\x00" and u("H", d, 52)[0] == 32,
             f"§14: {path}: not an unprotected X25519 secret key file")
        need(hmac.compare_digest(d[-32:], b2(d[:-32])), f"§14: {path}: checksum mismatch")
        pk, sk = d[20:52], d[54:86]
        need(sodium.crypto_scalarmult_base(sk) == pk, f"§14: {path}: the secret does not match the public key")
        keys[b2(pk, 16)] = (pk, sk)      # §6: key_id = BLAKE2b-128(public key)
    need(keys, f"no encryption/*.key in {keydir}")
    return keys

def open_archive(buf, trusted_pk, keys, ok=lambda msg: None):
    """All the checks of a restore (§12) without writing anything."""
    a = verify(buf, trusted_pk, ok)
    key = unwrap(a, keys)
    ok("§12.2 file_key unwrapped, header_mac valid")
    entries = read_manifest(a, buf, key)
    ok(f"§12.3 manifest: {len(entries)} entries, content_bytes, path rules")
    walk_tar(a, buf, key, entries)
    ok("§12.4-5 tar stream matches the manifest entry by entry (content hashes too), ends together")
    return a, key, entries

def load(path):
    if os.path.getsize(path) > MAX_FILE:
        raise OSError(f"{path}: over {MAX_FILE} bytes; this decoder reads archives whole and refuses it")
    return open(path, "rb").read()

def iso(sec, nsec=None):                 # the UTC timestamps of the listing and summary JSON
    t = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=sec)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ("Z" if nsec is None else f".{nsec:09d}Z")

def check(vdir):
    counts = [0, 0]
    def line(good, msg):
        counts[not good] += 1
        print(("PASS " if good else "FAIL ") + msg)
    buf = load(os.path.join(vdir, "vector-v1.car"))
    try:                                 # (1) §11 and (2) §12
        trusted, keys = read_public(os.path.join(vdir, "keys", "signing.pub")), read_keyring(os.path.join(vdir, "keys"))
        a, key, entries = open_archive(buf, trusted, keys, lambda msg: line(True, msg))
    except FormatError as e:
        line(False, str(e))
        return counts
    # (3) the manifest against vector-v1.listing.json, field by field
    listing = [json.loads(l) for l in open(os.path.join(vdir, "vector-v1.listing.json"), encoding="utf-8") if l.strip()]
    line(len(listing) == len(entries), f"listing has {len(listing)} lines for {len(entries)} manifest entries")
    for e, want in zip(entries, listing):
        have = {"type": e.type, "path": e.path, "mode": f"{e.mode:o}", "size": e.size, "mtime": iso(e.mtime, e.nsec)}
        have.update({"blake2b": e.hash.hex()} if e.type == "file" else {}, **({"link": e.link} if e.link else {}))
        want = dict(want, mode=f"{int(want.get('mode', '-1'), 8):o}")   # "0755" and "755" alike
        diff = [f"{f} {have.get(f)!r} != {want.get(f)!r}" for f in sorted(set(have) | set(want)) if have.get(f) != want.get(f)]
        line(not diff, f"listing {e.path}: " + (", ".join(diff) or "all fields equal"))
    # (3) computed values against vector-v1.summary.json
    have = {"archiveDigest": a.archive_digest.hex(), "headerDigest": a.header_digest.hex(), "chunkCount": a.N,
            "entryCount": len(entries), "contentBytes": sum(e.size for e in entries), "tarBytes": a.tar_bytes,
            "manifestBytes": a.manifest_bytes, "payloadBytes": a.payload_bytes, "fileSize": len(buf),
            "manifestFirstChunk": a.mfc, "label": a.label, "sources": a.sources, "creator": a.creator,
            "signerFingerprint": b2(a.signer_pk, 16).hex(),   # assumed like key_id: FORMAT.md does not define it
            "recipientKeyIDs": [r[1].hex() for r in a.recipients], "archiveID": a.archive_id.hex(),
            "chunkRawSize": a.chunk_raw_size, "created": iso(a.created), "formatVersion": 1, "suite": a.suite}
    for f, want in json.load(open(os.path.join(vdir, "vector-v1.summary.json"), encoding="utf-8")).items():
        line(f in have and have[f] == want, f"summary {f}: {have.get(f, 'not in FORMAT.md')!r}"
             + ("" if have.get(f) == want else f" != {want!r}"))
    line(not a.notes, "§8, §10 writer conventions: " + ("; ".join(a.notes) or "chunk sizes, order, sources, owners"))
    # (4) tamper self-test on in-memory copies: every one must be refused
    T, hlen, c0, cl = a.trailer_offset, u("I", buf, 12)[0], a.chunks[0], a.chunks[-1]
    def flip(at):
        return buf[:at] + bytes([buf[at] ^ 0x10]) + buf[at + 1:]
    cases = {"bit in the header": flip(16 + hlen // 2), "bit in chunk 0": flip(c0[0] + c0[1] // 2),
             "bit in the chunk table": flip(T + 96 + 20), "bit in the signature": flip(len(buf) - 56 - 30),
             "bit in the recipient block": flip(16 + hlen + 30), "bit in the footer": flip(len(buf) - 40),
             "bit in the manifest chunk": flip(cl[0] + 5), "file truncated by one byte": buf[:-1]}
    for name, bad in cases.items():
        try:
            open_archive(bad, trusted, keys)
            line(False, f"tamper: {name}: accepted")
        except FormatError as e:
            line(True, f"tamper: {name}: refused ({e})")
    try:
        verify(buf, bytes(32))
        line(False, "tamper: untrusted signing key: accepted")
    except FormatError as e:
        line(True, f"tamper: untrusted signing key: refused ({e})")
    return counts

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", metavar="VECTORS_DIR")
    mode.add_argument("--verify", metavar="ARCHIVE")
    mode.add_argument("--extract", metavar="ARCHIVE")
    ap.add_argument("--trust", metavar="SIGNING_PUB", help="trusted signing key (default for --extract: KEYDIR/signing.pub)")
    ap.add_argument("--keyring", metavar="KEYDIR")
    ap.add_argument("--to", metavar="DIR")
    args = ap.parse_args()
    if args.verify and not args.trust or args.extract and not (args.keyring and args.to):
        ap.error("--verify needs --trust; --extract needs --keyring and --to")
    try:
        if args.check:
            passed, failed = check(args.check)
            print(f"{passed} passed, {failed} failed")
            return int(failed > 0)
        if args.verify:
            a = verify(load(args.verify), read_public(args.trust), print)
            print(f"archive OK: archive_digest {a.archive_digest.hex()}")
            return 0
        buf = load(args.extract)
        trusted = read_public(args.trust or os.path.join(args.keyring, "signing.pub"))
        a, key, entries = open_archive(buf, trusted, read_keyring(args.keyring))   # all checks before writing
        os.makedirs(args.to, exist_ok=True)
        sink = Extractor(args.to)
        walk_tar(a, buf, key, entries, sink)
        sink.close()
        print("\n".join(["note: " + n for n in a.notes] + [f"extracted {len(entries)} entries to {args.to}"]))
        return 0
    except FormatError as e:
        print(f"refused: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

if __name__ == "__main__":
    sys.exit(main())
