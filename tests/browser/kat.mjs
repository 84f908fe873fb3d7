// kat.mjs - viewer/linkv2.js (the code the page runs) against the known
// answers: tests/vectors/link-v2.txt (made by the independent Python
// implementation and checked against crypto/link_v2.c) and RFC 9497 / RFC 9380
// in tests/vectors/oprf/.  Run by meson (suite unit) as
//     node tests/browser/kat.mjs
// with viewer/node_modules from `npm ci --prefix viewer`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { webcrypto } from "node:crypto";
import { fileURLToPath } from "node:url";
import path from "node:path";

// Node 18 (Debian 12) has no global crypto; libsodium's ESM build needs it.
if (globalThis.crypto === undefined)
	globalThis.crypto = webcrypto;

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const { default: sodium } = await import(path.join(ROOT,
	"viewer/node_modules/libsodium-wrappers-sumo/dist/modules-sumo-esm/libsodium-wrappers.mjs"));
const v2 = await import(path.join(ROOT, "viewer/linkv2.js"));
await sodium.ready;

const hex = (s) => Uint8Array.from(Buffer.from(s, "hex"));
const tohex = (b) => Buffer.from(b).toString("hex");

// "[name]" then "key = value" lines; "#" comments.
function sections(file) {
	const out = new Map();
	let cur = null;
	for (const line of readFileSync(path.join(ROOT, file), "utf8").split("\n")) {
		if (line.startsWith("#") || line.trim() === "")
			continue;
		const m = /^\[(.+)\]$/.exec(line);
		if (m) {
			cur = {};
			out.set(m[1], cur);
			continue;
		}
		const i = line.indexOf(" =");
		cur[line.slice(0, i)] = line.slice(i + 2).trim();
	}
	return out;
}

const link = sections("tests/vectors/link-v2.txt");
const oprf = sections("tests/vectors/oprf/rfc9497-ristretto255-sha512.txt");

test("the vector files have what this test reads", () => {
	assert.ok(link.size >= 2);
	for (const n of ["key", "vector-1", "vector-2", "xmd-empty-32", "xmd-abc-32", "xmd-abc-128"])
		assert.ok(oprf.has(n), n);
});

for (const name of ["xmd-empty-32", "xmd-abc-32", "xmd-abc-128"]) {
	test(`RFC 9380 K.3 expand_message_xmd(SHA-512) ${name}`, () => {
		const v = oprf.get(name);
		const dst = new TextEncoder().encode("QUUX-V01-CS02-with-expander-SHA512-256");
		const out = v2.expandMessageXmd(sodium, hex(v.msg), dst, Number(v.len_in_bytes));
		assert.equal(tohex(out), v.uniform_bytes);
	});
}

for (const name of ["vector-1", "vector-2"]) {
	test(`RFC 9497 A.1.1 ristretto255-SHA512 OPRF ${name}: Blind and Finalize`, () => {
		const v = oprf.get(name), skSm = hex(oprf.get("key").skSm);
		const { blind, blinded } = v2.blind(sodium, hex(v.Input), hex(v.Blind));
		assert.equal(tohex(blinded), v.BlindedElement);
		// The server's side, to see that this evaluation is the vector's.
		assert.equal(tohex(sodium.crypto_scalarmult_ristretto255(skSm, blinded)), v.EvaluationElement);
		const y = v2.finalize(sodium, hex(v.Input), blind, hex(v.EvaluationElement));
		assert.equal(tohex(y), v.Output);
	});
}

test("received elements: non-canonical, identity and invalid encodings are refused", () => {
	const good = hex(oprf.get("vector-1").EvaluationElement);
	v2.checkElement(sodium, good);
	const top = good.slice();
	top[31] |= 0x80;                  // libsodium 1.0.18 would accept this one
	for (const bad of [top, new Uint8Array(32), new Uint8Array(32).fill(0xff), good.slice(0, 31)])
		assert.throws(() => v2.checkElement(sodium, bad), { code: "element" });
	const input = hex(oprf.get("vector-1").Input), r = hex(oprf.get("vector-1").Blind);
	assert.throws(() => v2.finalize(sodium, input, r, top), { code: "element" });
});

for (const [name, v] of link) {
	test(`link v2 ${name}: every step of the browser's unlock`, () => {
		const { linkId, linkSecret } = v2.parseLink(v.id_b64, v.secret_b64);
		assert.equal(tohex(linkId), v.link_id);
		assert.equal(tohex(linkSecret), v.link_secret);
		assert.equal(v2.b64urlEncode(linkId), v.id_b64);

		const paramsBytes = hex(v.params);
		const params = v2.parseParams(paramsBytes);
		assert.equal(params.passes, Number(v.opslimit));
		assert.equal(params.memKiB, Number(v.memlimit_kib));
		assert.equal(tohex(params.salt), v.salt);

		const pwd = v2.passwordBytes(v.password);
		assert.equal(tohex(pwd), v.password_utf8);
		const pw = v2.argon2id(sodium, pwd, params);
		assert.equal(tohex(pw), v.pw);
		const input = v2.oprfInput(linkId, pw);
		assert.equal(tohex(input), v.input);

		const { blind, blinded } = v2.blind(sodium, input, hex(v.blind));
		assert.equal(tohex(blinded), v.blinded);
		const y = v2.finalize(sodium, input, blind, hex(v.evaluated));
		assert.equal(tohex(y), v.y);

		const k = v2.deriveKeys(sodium, y, linkId, linkSecret);
		assert.equal(tohex(k.root), v.root);
		assert.equal(tohex(k.kwk), v.kwk);
		assert.equal(tohex(k.seed), v.auth_seed);
		assert.equal(tohex(k.authPk), v.auth_pk);
		const proof = v2.unlockProof(sodium, k.authSk, linkId, hex(v.attempt));
		assert.equal(tohex(proof), v.proof);

		const mk = v2.unwrapKey(sodium, paramsBytes, hex(v.sealed_key), linkId, k.kwk);
		assert.equal(tohex(mk), v.key);
		// Another link id (the AD) or a changed byte: no key.
		const other = linkId.slice();
		other[0] ^= 1;
		assert.throws(() => v2.unwrapKey(sodium, paramsBytes, hex(v.sealed_key), other, k.kwk),
		              { code: "unwrap" });
		v2.wipeKeys(sodium, k);
		assert.ok(k.kwk.every((b) => b === 0) && k.authSk.every((b) => b === 0));
	});
}

test("strict base64url: one spelling per value", () => {
	const [, v] = [...link][0];
	const last = v.id_b64.at(-1);
	// The 4 unused bits of the last character must be zero.
	const alt = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const i = alt.indexOf(last);
	const twin = v.id_b64.slice(0, -1) + alt[i + 1];
	assert.throws(() => v2.b64urlDecode(twin, 16), { code: "base64" });
	for (const bad of [v.id_b64 + "=", v.id_b64.slice(1), v.id_b64.replace(/.$/, "+"), v.id_b64 + "A"])
		assert.throws(() => v2.parseLink(bad, v.secret_b64));
});

test("params: magic, version and Argon2id bounds are checked before any work", () => {
	const [, v] = [...link][0];
	const p = hex(v.params);
	const mod = (i, b) => { const q = p.slice(); q[i] = b; return q; };
	assert.throws(() => v2.parseParams(mod(0, 0x41)), { code: "params" });      // magic
	assert.throws(() => v2.parseParams(mod(8, 1)), { code: "params" });         // version 1
	assert.throws(() => v2.parseParams(mod(12, 9)), { code: "params" });        // 9 passes
	assert.throws(() => v2.parseParams(mod(14, 0x10)), { code: "params" });     // 1 GiB
	assert.throws(() => v2.parseParams(p.slice(0, 32)), { code: "params" });
	assert.throws(() => v2.passwordBytes(""), { code: "password" });
	assert.throws(() => v2.passwordBytes("x".repeat(1025)), { code: "password" });
});

// A message blob made here with libsodium (the writer's side), opened by the
// reader the page runs: every rule of the chunked stream.
function sealBlob(key, plain, { dropFinal = false, extra = null } = {}) {
	const head = Uint8Array.from([...Buffer.from("SPLNKMSG"), 1]);
	const { state, header } = sodium.crypto_secretstream_xchacha20poly1305_init_push(key);
	const parts = [head, header];
	const C = 65536;
	const n = Math.max(1, Math.ceil(plain.length / C));
	for (let i = 0; i < n; i++) {
		const last = i === n - 1;
		if (last && dropFinal)
			break;
		const tag = last ? sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
			: sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
		parts.push(sodium.crypto_secretstream_xchacha20poly1305_push(state,
			plain.subarray(i * C, (i + 1) * C), i === 0 ? head : null, tag));
	}
	if (extra)
		parts.push(extra);
	return Buffer.concat(parts.map((p) => Buffer.from(p)));
}

function viewDoc(header, atts) {
	const j = Buffer.from(JSON.stringify({ v: 1, ...header }));
	const len = Buffer.alloc(4);
	len.writeUInt32BE(j.length);
	return new Uint8Array(Buffer.concat([Buffer.from("SPVIEWD1"), len, j, ...atts]));
}

test("message blob + view document: opens, parses, and refuses every damage", async () => {
	const key = sodium.crypto_secretstream_xchacha20poly1305_keygen();
	const att = sodium.randombytes_buf(200000);          // 4 chunks with the header
	const doc = viewDoc({ from: "Alice <a@example.org>", to: ["b@example.net"], subject: "Grüße",
	                      text: "hello", html: "<p>hi</p>",
	                      attachments: [{ name: "a.bin", type: "application/octet-stream", size: att.length }] },
	                    [att]);
	const blob = new Uint8Array(sealBlob(key, doc));
	let calls = 0;
	const plain = await v2.openMessage(sodium, blob, key, async () => calls++);
	assert.equal(calls, 4);
	assert.deepEqual(Buffer.from(plain), Buffer.from(doc));
	const vd = v2.parseViewDoc(plain);
	assert.equal(vd.subject, "Grüße");
	assert.equal(vd.to, "b@example.net");
	assert.equal(vd.attachments.length, 1);
	assert.deepEqual(Buffer.from(vd.attachments[0].bytes), Buffer.from(att));

	const flip = blob.slice();
	flip[blob.length - 3] ^= 1;
	const head = blob.slice();
	head[8] = 2;
	for (const bad of [flip, head, blob.subarray(0, blob.length - 1),
	                   blob.subarray(0, 9 + 24 + 65553),
	                   new Uint8Array(sealBlob(key, doc, { dropFinal: true })),
	                   new Uint8Array(sealBlob(key, doc, { extra: Uint8Array.of(0) }))])
		await assert.rejects(v2.openMessage(sodium, bad, key), { code: "stream" });
	const wrong = sodium.crypto_secretstream_xchacha20poly1305_keygen();
	await assert.rejects(v2.openMessage(sodium, blob, wrong), { code: "stream" });

	// An empty message is one empty FINAL chunk.
	assert.equal((await v2.openMessage(sodium, new Uint8Array(sealBlob(key, new Uint8Array(0))), key)).length, 0);

	// View document: sizes must add up exactly; the header must be JSON.
	assert.throws(() => v2.parseViewDoc(doc.subarray(0, doc.length - 1)), { code: "viewdoc" });
	assert.throws(() => v2.parseViewDoc(viewDoc({ attachments: [{ name: "x", size: -1 }] }, [])),
	              { code: "viewdoc" });
	assert.throws(() => v2.parseViewDoc(viewDoc({}, [Buffer.from("x")])), { code: "viewdoc" });
	const v2doc = viewDoc({ v: 2 }, []);
	assert.throws(() => v2.parseViewDoc(v2doc), { code: "viewdoc" });
	assert.equal(v2.parseViewDoc(viewDoc({ html_refused: true, subject: null }, [])).htmlRefused, true);
	const notjson = viewDoc({}, []);
	notjson[12] = 0x7b + 1;
	assert.throws(() => v2.parseViewDoc(notjson), { code: "viewdoc" });
});
