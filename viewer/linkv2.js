// linkv2.js - the browser's half of link envelope v2 (docs/formats.md,
// "Link envelope (v2)"): strict base64url, the params, Argon2id, the RFC 9497
// OPRF client (ristretto255-SHA512), the key derivations, the unlock proof,
// the key unwrap, the chunked stream and the view document.
//
// No DOM here: app.js drives it in the page, tests/browser/kat.mjs checks it
// in node against tests/vectors/link-v2.txt and the RFC 9497 vectors.  Every
// function takes the ready libsodium-wrappers-sumo object as `sodium`.
// Every error is an Error whose `code` says which step failed; nothing here
// ever turns an error into plaintext.

const enc = new TextEncoder();

export const ID_BYTES = 16;          // link_id and link_secret
export const ID_B64_LEN = 22;        // their base64url spelling
export const PARAMS_BYTES = 33;      // magic, version, passes, memory, salt
export const SEALED_KEY_BYTES = 72;  // nonce (24) || wrapped key (48)
export const ELEMENT_BYTES = 32;
export const ATTEMPT_BYTES = 16;
export const PASSWORD_MAX = 1024;    // bytes of UTF-8, as every reader
const PASSES_MIN = 1, PASSES_MAX = 8;            // Argon2id bounds (formats.md v1)
const MEM_KIB_MIN = 8, MEM_KIB_MAX = 262144;
const CHUNK = 65536;                 // chunked stream: plaintext bytes per chunk
const CHUNK_OVERHEAD = 17;           // secretstream ABYTES
const STREAM_HEADER = 24;
// The view document's JSON header: the writer's own bound
// (SP_VIEW_DOC_MAX_HEADER, crypto/view_doc.h: the text and the sanitised HTML
// with its inlined images are inside it).
export const VIEWDOC_JSON_MAX = 128 * 1024 * 1024;
// Attachments listed in one view document (SP_VIEW_DOC_MAX_ATTACHMENTS).
export const VIEWDOC_ATTACHMENTS_MAX = 256;
// The view document version this page reads (the header's "v").
export const VIEWDOC_VERSION = 1;

const MAGIC_KEY = "SPLNKKEY";
const MAGIC_MSG = "SPLNKMSG";
const MAGIC_VIEW = "SPVIEWD1";

// RFC 9497 contextString for mode 0x00, ristretto255-SHA512.
const CONTEXT = concat(enc.encode("OPRFV1-"), Uint8Array.of(0), enc.encode("-ristretto255-SHA512"));
export const L_INPUT = enc.encode("sealpost link v2 oprf input");
export const L_ROOT = enc.encode("sealpost link v2 root");
export const L_KWK = enc.encode("sealpost link v2 kwk");
export const L_AUTH = enc.encode("sealpost link v2 auth");
export const L_UNLOCK = enc.encode("sealpost link v2 unlock");

export class LinkError extends Error {
	constructor(code, message) {
		super(message);
		this.code = code;
	}
}

export function concat(...parts) {
	let n = 0;
	for (const p of parts)
		n += p.length;
	const out = new Uint8Array(n);
	let off = 0;
	for (const p of parts) {
		out.set(p, off);
		off += p.length;
	}
	return out;
}

function u16be(n) {
	return Uint8Array.of((n >> 8) & 0xff, n & 0xff);
}

function u32be(b, off) {
	return ((b[off] << 24) >>> 0) + (b[off + 1] << 16) + (b[off + 2] << 8) + b[off + 3];
}

function bytesEqual(a, b) {
	if (a.length !== b.length)
		return false;
	for (let i = 0; i < a.length; i++)
		if (a[i] !== b[i])
			return false;
	return true;
}

// ---- strict base64url without padding ----

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

export function b64urlEncode(bytes) {
	let s = "";
	let i = 0;
	for (; i + 2 < bytes.length; i += 3) {
		const v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
		s += B64[v >> 18] + B64[(v >> 12) & 63] + B64[(v >> 6) & 63] + B64[v & 63];
	}
	if (bytes.length - i === 1) {
		const v = bytes[i] << 16;
		s += B64[v >> 18] + B64[(v >> 12) & 63];
	} else if (bytes.length - i === 2) {
		const v = (bytes[i] << 16) | (bytes[i + 1] << 8);
		s += B64[v >> 18] + B64[(v >> 12) & 63] + B64[(v >> 6) & 63];
	}
	return s;
}

// One spelling per value: the alphabet only, no padding, a length that a
// whole number of bytes gives, and the unused trailing bits zero (checked by
// encoding the result again).  `want` is the byte length, or undefined.
export function b64urlDecode(s, want) {
	if (typeof s !== "string" || !/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1)
		throw new LinkError("base64", "not base64url");
	const n = Math.floor(s.length * 3 / 4);
	if (want !== undefined && n !== want)
		throw new LinkError("base64", "wrong length");
	const out = new Uint8Array(n);
	let acc = 0, bits = 0, o = 0;
	for (const ch of s) {
		acc = (acc << 6) | B64.indexOf(ch);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (acc >> bits) & 0xff;
		}
		acc &= (1 << bits) - 1;
	}
	if (b64urlEncode(out) !== s)
		throw new LinkError("base64", "not the canonical spelling");
	return out;
}

// The link: path id and fragment secret, 22 characters each.
export function parseLink(idB64, secretB64) {
	if (typeof idB64 !== "string" || idB64.length !== ID_B64_LEN ||
	    typeof secretB64 !== "string" || secretB64.length !== ID_B64_LEN)
		throw new LinkError("link", "the link is incomplete");
	return { linkId: b64urlDecode(idB64, ID_BYTES), linkSecret: b64urlDecode(secretB64, ID_BYTES) };
}

// ---- params ----

export function parseParams(p) {
	if (!(p instanceof Uint8Array) || p.length !== PARAMS_BYTES ||
	    !bytesEqual(p.subarray(0, 8), enc.encode(MAGIC_KEY)))
		throw new LinkError("params", "not link v2 parameters");
	if (p[8] !== 2)
		throw new LinkError("params", `unknown link version ${p[8]}`);
	const passes = u32be(p, 9), memKiB = u32be(p, 13);
	if (passes < PASSES_MIN || passes > PASSES_MAX || memKiB < MEM_KIB_MIN || memKiB > MEM_KIB_MAX)
		throw new LinkError("params", "Argon2id parameters out of bounds");
	return { passes, memKiB, salt: p.slice(17, 33) };
}

export function passwordBytes(password) {
	const b = enc.encode(password);
	if (b.length < 1 || b.length > PASSWORD_MAX) {
		b.fill(0);
		throw new LinkError("password", "a password is 1 to 1024 bytes");
	}
	return b;
}

// pw = Argon2id-v1.3(password, salt, t, m KiB, p = 1, 32 bytes)
export function argon2id(sodium, pwdBytes, params) {
	return sodium.crypto_pwhash(32, pwdBytes, params.salt, params.passes, params.memKiB * 1024,
	                            sodium.crypto_pwhash_ALG_ARGON2ID13);
}

// input = L_input || link_id || pw
export function oprfInput(linkId, pw) {
	return concat(L_INPUT, linkId, pw);
}

// ---- RFC 9497 OPRF, client side (mode 0x00, ristretto255-SHA512) ----

// expand_message_xmd(SHA-512), RFC 9380 5.3.1.
export function expandMessageXmd(sodium, msg, dst, len) {
	const ell = Math.ceil(len / 64);
	if (ell > 255 || dst.length > 255 || len > 65535)
		throw new LinkError("xmd", "expand_message_xmd: bad length");
	const dstPrime = concat(dst, Uint8Array.of(dst.length));
	const b0 = sodium.crypto_hash_sha512(concat(new Uint8Array(128), msg, u16be(len),
	                                            Uint8Array.of(0), dstPrime));
	const out = new Uint8Array(ell * 64);
	let prev = sodium.crypto_hash_sha512(concat(b0, Uint8Array.of(1), dstPrime));
	out.set(prev, 0);
	for (let i = 2; i <= ell; i++) {
		const x = new Uint8Array(64);
		for (let j = 0; j < 64; j++)
			x[j] = b0[j] ^ prev[j];
		prev = sodium.crypto_hash_sha512(concat(x, Uint8Array.of(i), dstPrime));
		out.set(prev, (i - 1) * 64);
	}
	return out.slice(0, len);
}

export function hashToGroup(sodium, input) {
	const dst = concat(enc.encode("HashToGroup-"), CONTEXT);
	const u = expandMessageXmd(sodium, input, dst, 64);
	const p = sodium.crypto_core_ristretto255_from_hash(u);
	sodium.memzero(u);
	return p;
}

// A received element: a canonical encoding (top bit clear, is_valid_point)
// other than the identity.
export function checkElement(sodium, e) {
	if (!(e instanceof Uint8Array) || e.length !== ELEMENT_BYTES || (e[31] & 0x80) !== 0 ||
	    e.every((b) => b === 0) || !sodium.crypto_core_ristretto255_is_valid_point(e))
		throw new LinkError("element", "the viewer sent an invalid group element");
}

// The group order L, little-endian: a scalar must be below it and non-zero.
const ORDER = Uint8Array.from([
	0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10]);

function scalarCanonicalNonzero(s) {
	if (s.length !== 32 || s.every((b) => b === 0))
		return false;
	for (let i = 31; i >= 0; i--) {
		if (s[i] < ORDER[i])
			return true;
		if (s[i] > ORDER[i])
			return false;
	}
	return false;
}

// Blind(input): a random blind unless one is given (known-answer tests).
export function blind(sodium, input, fixedBlind) {
	const r = fixedBlind ? fixedBlind.slice() : sodium.crypto_core_ristretto255_scalar_random();
	if (!scalarCanonicalNonzero(r))
		throw new LinkError("scalar", "bad blind");
	const p = hashToGroup(sodium, input);
	const blinded = sodium.crypto_scalarmult_ristretto255(r, p);
	sodium.memzero(p);
	return { blind: r, blinded };
}

// Finalize(input, blind, evaluated): 64 bytes.
export function finalize(sodium, input, r, evaluated) {
	checkElement(sodium, evaluated);
	const inv = sodium.crypto_core_ristretto255_scalar_invert(r);
	const n = sodium.crypto_scalarmult_ristretto255(inv, evaluated);
	sodium.memzero(inv);
	const t = concat(u16be(input.length), input, u16be(n.length), n, enc.encode("Finalize"));
	const y = sodium.crypto_hash_sha512(t);
	sodium.memzero(t);
	sodium.memzero(n);
	return y;
}

// ---- key derivation and proof ----

// root, kwk, auth seed and key pair from the OPRF output y.
export function deriveKeys(sodium, y, linkId, linkSecret) {
	const root = sodium.crypto_generichash(32, concat(L_ROOT, linkId, linkSecret), y);
	const kwk = sodium.crypto_generichash(32, L_KWK, root);
	const seed = sodium.crypto_generichash(32, L_AUTH, root);
	const kp = sodium.crypto_sign_seed_keypair(seed);
	return { root, kwk, seed, authPk: kp.publicKey, authSk: kp.privateKey };
}

export function wipeKeys(sodium, k) {
	for (const v of [k.root, k.kwk, k.seed, k.authSk])
		if (v)
			sodium.memzero(v);
}

// proof = Ed25519-sign(auth_sk, L_unlock || link_id || attempt_id)
export function unlockProof(sodium, authSk, linkId, attempt) {
	if (attempt.length !== ATTEMPT_BYTES)
		throw new LinkError("attempt", "bad attempt id");
	return sodium.crypto_sign_detached(concat(L_UNLOCK, linkId, attempt), authSk);
}

// The message key from the sealed key (nonce || wrapped).
export function unwrapKey(sodium, params, sealed, linkId, kwk) {
	if (sealed.length !== SEALED_KEY_BYTES)
		throw new LinkError("sealed", "bad sealed key");
	const nonce = sealed.subarray(0, 24);
	const ad = concat(params, nonce, linkId);
	try {
		return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, sealed.subarray(24), ad,
		                                                         nonce, kwk);
	} catch (e) {
		throw new LinkError("unwrap", "the message key does not open");
	}
}

// ---- the message blob: SPLNKMSG, version 1, chunked stream ----

// The plaintext; onProgress(done, total) after every chunk, awaited, so the
// page can let the browser paint its progress bar between chunks.  Every rule
// of formats.md "Chunked stream": FINAL last and only last, nothing after it.
export async function openMessage(sodium, blob, key, onProgress) {
	const fail = (why) => { throw new LinkError("stream", why); };
	if (blob.length < 9 + STREAM_HEADER + CHUNK_OVERHEAD ||
	    !bytesEqual(blob.subarray(0, 8), enc.encode(MAGIC_MSG)))
		fail("not a sealpost message");
	if (blob[8] !== 1)
		fail(`unknown message version ${blob[8]}`);
	const ad0 = blob.slice(0, 9);
	let state;
	try {
		state = sodium.crypto_secretstream_xchacha20poly1305_init_pull(blob.subarray(9, 9 + STREAM_HEADER), key);
	} catch (e) {
		fail("the message does not open");
	}
	const out = new Uint8Array(blob.length);
	let off = 9 + STREAM_HEADER, n = 0, first = true;
	for (;;) {
		const len = Math.min(CHUNK + CHUNK_OVERHEAD, blob.length - off);
		if (len < CHUNK_OVERHEAD)
			fail("the message is cut short");
		let r;
		try {
			r = sodium.crypto_secretstream_xchacha20poly1305_pull(state, blob.subarray(off, off + len),
			                                                  first ? ad0 : null);
		} catch (e) {
			r = false;
		}
		if (!r || !r.message)
			fail("the message was changed or is damaged");
		first = false;
		off += len;
		out.set(r.message, n);
		n += r.message.length;
		sodium.memzero(r.message);
		if (onProgress)
			await onProgress(off, blob.length);
		if (r.tag === sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
			if (off !== blob.length)
				fail("bytes after the end of the message");
			break;
		}
		if (r.tag !== sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE || r.message.length !== CHUNK)
			fail("bad chunk");
		if (off === blob.length)
			fail("the message is cut short");
	}
	return out.subarray(0, n);
}

// ---- the view document: SPVIEWD1, u32 JSON length, JSON, attachment bytes ----
// (docs/formats.md "View document (v2)", written by crypto/view_doc.c)

function field(v) {
	if (v === undefined || v === null)
		return "";
	if (Array.isArray(v))
		return v.map(String).join(", ");
	return String(v);
}

export function isViewDoc(doc) {
	return doc.length >= 8 && bytesEqual(doc.subarray(0, 8), enc.encode(MAGIC_VIEW));
}

export function parseViewDoc(doc) {
	const fail = (why) => { throw new LinkError("viewdoc", why); };
	if (doc.length < 12 || !bytesEqual(doc.subarray(0, 8), enc.encode(MAGIC_VIEW)))
		fail("not a view document");
	const jlen = u32be(doc, 8);
	if (jlen > VIEWDOC_JSON_MAX || 12 + jlen > doc.length)
		fail("bad header length");
	let h;
	try {
		h = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(doc.subarray(12, 12 + jlen)));
	} catch (e) {
		fail("bad header");
	}
	if (h === null || typeof h !== "object" || Array.isArray(h))
		fail("bad header");
	if (h.v !== VIEWDOC_VERSION)
		fail(`unknown view document version ${h.v}`);
	const list = h.attachments === undefined ? [] : h.attachments;
	if (!Array.isArray(list) || list.length > VIEWDOC_ATTACHMENTS_MAX)
		fail("bad attachment list");
	let off = 12 + jlen;
	const attachments = list.map((a) => {
		if (a === null || typeof a !== "object" || !Number.isSafeInteger(a.size) || a.size < 0 ||
		    a.size > doc.length - off)
			fail("bad attachment");
		const bytes = doc.subarray(off, off + a.size);
		off += a.size;
		return { name: field(a.name) || "attachment", type: field(a.type) || "application/octet-stream",
		         size: a.size, bytes };
	});
	if (off !== doc.length)
		fail("attachment sizes do not add up");
	return {
		from: field(h.from), to: field(h.to), cc: field(h.cc), date: field(h.date),
		subject: field(h.subject), text: typeof h.text === "string" ? h.text : "",
		html: typeof h.html === "string" ? h.html : "", attachments,
		htmlRefused: h.html_refused === true, truncated: h.truncated === true,
		messageId: field(h.message_id), senderKey: field(h.sender_key),
	};
}
