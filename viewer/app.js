// app.js - the link v2 page (docs/viewer.md): reads the link from the address
// (id in the path, secret in the fragment, which no server ever receives),
// asks the viewer for the link's public parameters, takes the password, runs
// the unlock of docs/formats.md "Link envelope (v2)" with linkv2.js, and shows
// the message.  The password, the link secret, every key and the plaintext
// stay in this tab; secrets are wiped with sodium.memzero after use.
import sodium from "./sodium.mjs";
import * as v2 from "./linkv2.js";

const $ = (id) => document.getElementById(id);

// The viewer's answers are small JSON objects; the message can be large, but
// the viewer never sends more than it stored (its own limits apply).
const JSON_MAX = 64 * 1024;

function show(id, on = true) {
	$(id).hidden = !on;
}

function status(text) {
	$("status").textContent = text;
}

function progress(done, total) {
	const p = $("progress");
	if (total === null) {
		p.hidden = true;
		return;
	}
	p.hidden = false;
	if (total > 0) {
		p.max = total;
		p.value = done;
	} else {
		p.removeAttribute("value");          // indeterminate
	}
}

function error(text) {
	$("error").textContent = text;
	show("error", text !== "");
}

// Let the browser paint the status line before a long synchronous step.
function paint() {
	return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}

// The progress bar while a message decrypts: updated after every chunk,
// painted about every 4 MB (a paint waits for the next frame).
function decryptProgress() {
	let painted = 0;
	return (done, total) => {
		progress(done, total);
		if (done - painted < 4 * 1024 * 1024)
			return undefined;
		painted = done;
		return paint();
	};
}

// An error the page explains in words; `final`: no point trying again here.
class Stop extends Error {
	constructor(message, final = true) {
		super(message);
		this.final = final;
	}
}

// The viewer's refusals, in words; `final` ends the page (no retry).  The
// status decides; the JSON body's "error" code (web_v2.c) only refines it.
async function refusal(res) {
	let code = "";
	try {
		if ((res.headers.get("Content-Type") || "").startsWith("application/json"))
			code = String((await json(res)).error || "");
	} catch (e) {
		code = "";
	}
	if (res.status === 410 && code === "destroyed")
		return { text: "Too many wrong passwords: this link has been destroyed. Ask the sender " +
		               "to send the message again.", final: true };
	if (res.status === 410 || res.status === 404)
		return { text: "This link no longer works: it has expired, was revoked, was opened " +
		               "as often as the sender allowed, or had too many wrong passwords.", final: true };
	if (res.status === 429) {
		const s = Number.parseInt(res.headers.get("Retry-After") || "", 10);
		const wait = Number.isFinite(s) && s > 0 ? ` Please wait ${s} second${s === 1 ? "" : "s"} and try again.`
		                                         : " Please wait a little and try again.";
		return { text: (code === "busy" ? "Other attempts to open this link are under way."
		                                : "Too many attempts from your connection.") + wait,
		         final: false };
	}
	if (res.status === 403 && code === "stale-attempt")
		return { text: "That took too long and the attempt expired. Please try again.", final: false };
	if (res.status === 403)
		return { text: "Wrong password. Check it (letters, dashes, spaces) and try again. Each " +
		               "wrong try counts: after too many, the link is destroyed.", final: false };
	if (res.status === 503)
		return { text: "The viewer is unavailable right now. Please try again in a few minutes.",
		         final: false };
	return { text: `The viewer could not answer (HTTP ${res.status}). Please try again later.`,
	         final: false };
}

async function api(path, body) {
	const init = { method: body ? "POST" : "GET", cache: "no-store", credentials: "same-origin",
	               redirect: "error", referrerPolicy: "no-referrer" };
	if (body) {
		init.headers = { "Content-Type": "application/json" };
		init.body = JSON.stringify(body);
	}
	let res;
	try {
		res = await fetch(path, init);
	} catch (e) {
		throw new Stop("The viewer cannot be reached. Check your connection and try again.", false);
	}
	return res;
}

async function json(res) {
	const t = await res.text();
	if (t.length > JSON_MAX)
		throw new Stop("The viewer sent an answer this page does not understand.");
	try {
		return JSON.parse(t);
	} catch (e) {
		throw new Stop("The viewer sent an answer this page does not understand.");
	}
}

// The body with progress (Content-Length when the viewer gives it).
async function readBody(res, onProgress) {
	const total = Number.parseInt(res.headers.get("Content-Length") || "0", 10) || 0;
	if (!res.body)
		return new Uint8Array(await res.arrayBuffer());
	const reader = res.body.getReader();
	const parts = [];
	let n = 0;
	for (;;) {
		const { done, value } = await reader.read();
		if (done)
			break;
		parts.push(value);
		n += value.length;
		onProgress(n, total);
	}
	const out = v2.concat(...parts);
	for (const p of parts)
		p.fill(0);
	return out;
}

function b64(s, n) {
	try {
		return v2.b64urlDecode(s, n);
	} catch (e) {
		throw new Stop("The viewer sent an answer this page does not understand.");
	}
}

// ---- the message ----

function headerRow(dl, name, value) {
	if (!value)
		return;
	const dt = document.createElement("dt");
	const dd = document.createElement("dd");
	dt.textContent = name;
	dd.textContent = value;
	dl.append(dt, dd);
}

function size(n) {
	if (n < 1024)
		return `${n} bytes`;
	if (n < 1024 * 1024)
		return `${(n / 1024).toFixed(1)} KB`;
	return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

// The HTML part (sanitised by the proxy at send time) goes into a sandboxed
// frame: no scripts, no same origin, no forms; links open in a new tab.  It
// inherits this page's CSP, and its own meta policy forbids every remote load.
const HTML_HEAD = "<!DOCTYPE html><meta charset=\"utf-8\">" +
	"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; " +
	"form-action 'none'; base-uri 'none'\"><base target=\"_blank\">";

function render(doc) {
	document.title = doc.subject || "Encrypted message";
	$("subject").textContent = doc.subject || "(no subject)";
	const dl = $("headers");
	headerRow(dl, "From", doc.from);
	headerRow(dl, "To", doc.to);
	headerRow(dl, "Cc", doc.cc);
	headerRow(dl, "Date", doc.date);

	const body = $("body");
	const note = (text) => {
		const p = document.createElement("p");
		p.className = "muted";
		p.textContent = text;
		body.append(p);
	};
	if (doc.htmlRefused)
		note("The formatted (HTML) version of this message could not be shown safely and was left out.");
	if (doc.truncated)
		note("This message has more parts than can be shown; some were left out.");
	const pre = document.createElement("pre");
	pre.className = "body";
	pre.id = "text";
	pre.textContent = doc.text;
	if (doc.html) {
		const f = document.createElement("iframe");
		f.setAttribute("sandbox", "allow-popups allow-popups-to-escape-sandbox");
		f.setAttribute("referrerpolicy", "no-referrer");
		f.title = "HTML version of the message";
		f.srcdoc = HTML_HEAD + doc.html;
		body.append(f);
		if (doc.text) {
			const d = document.createElement("details");
			const s = document.createElement("summary");
			s.textContent = "Plain-text version";
			d.append(s, pre);
			body.append(d);
		}
	} else {
		body.append(pre);
	}

	const ul = $("attachments");
	for (const a of doc.attachments) {
		// Never the sender's type: a download, never something the tab renders.
		const li = document.createElement("li");
		const link = downloadLink(a.bytes, a.name);
		const s = document.createElement("span");
		s.className = "muted";
		s.textContent = size(a.size);
		li.append(link, s);
		ul.append(li);
	}
	show("att-card", doc.attachments.length > 0);
	show("intro", false);
	show("message");
	if (doc.senderKey && replyCap)
		setupReply(doc, replyCap);
}

function downloadLink(bytes, name) {
	// A copy (the plaintext buffer is wiped), typed so the tab never renders it.
	const a = document.createElement("a");
	a.href = URL.createObjectURL(new Blob([bytes.slice()], { type: "application/octet-stream" }));
	a.download = name;
	a.className = "name";
	a.textContent = name;
	return a;
}

// A message blob that holds the original message rather than a view document
// (links made before the proxy rendered view documents): it is offered as
// the e-mail file it is, and its source shown as text, never as markup.
function renderOriginal(bytes) {
	$("subject").textContent = "Encrypted message";
	const body = $("body");
	const p = document.createElement("p");
	p.textContent = "This message comes as the original e-mail file: open it with your mail " +
	                "program to see it formatted, with its attachments.";
	const pre = document.createElement("pre");
	pre.className = "body";
	pre.id = "text";
	pre.textContent = new TextDecoder("utf-8").decode(bytes);
	body.append(p, pre);
	const li = document.createElement("li");
	const s = document.createElement("span");
	s.className = "muted";
	s.textContent = size(bytes.length);
	li.append(downloadLink(bytes, "message.eml"), s);
	$("attachments").append(li);
	show("att-card");
	show("intro", false);
	show("message");
}

// ---- the secure reply (docs/formats.md "Secure reply") ----
//
// The unlock's answer carries a reply token; with the view document's
// sender_key, the page offers a reply form.  The reply is a MIME entity with
// protected headers, encrypted here with OpenPGP.js to the sender's key and
// posted under the token: the viewer and the proxy only see ciphertext.

let replyCap = null;
const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;
// Of the viewer's limit on one reply (ciphertext): what attachments may take,
// after base64 (4/3) and the text, headers and OpenPGP framing.
const REPLY_ATTACH_SHARE = 0.7;

function replyCapability(res, idb) {
	const token = res.headers.get("Sealpost-Reply-Token");
	const max = Number(res.headers.get("Sealpost-Reply-Max-Size"));
	if (!token || !TOKEN_RE.test(token) || !Number.isSafeInteger(max) || max <= 0)
		return null;
	return { token, max, idb };
}

// Printable ASCII of one header line, or "".
function asciiLine(v) {
	return typeof v === "string" && /^[\x20-\x7e]{1,900}$/.test(v) ? v : "";
}

// The bare address of "Name <a@b>" or "a@b", or "".
function addressOf(v) {
	if (typeof v !== "string")
		return "";
	const m = /<([^<>\s]+@[^<>\s]+)>\s*$/.exec(v) || /^\s*([^<>\s,]+@[^<>\s,]+)\s*$/.exec(v);
	return m ? asciiLine(m[1]) : "";
}

function msgId(v) {
	const s = asciiLine(v);
	if (!s || !s.includes("@") || /[\s<>]/.test(s.replace(/^<(.*)>$/, "$1")))
		return "";
	return s.startsWith("<") ? s : `<${s}>`;
}

function randomHex(n) {
	return sodium.to_hex(sodium.randombytes_buf(n));
}

// RFC 2047 for a header value that is not plain ASCII.
function encodedWord(v) {
	if (/^[\x20-\x7e]*$/.test(v))
		return v;
	return `=?UTF-8?B?${sodium.to_base64(sodium.from_string(v), sodium.base64_variants.ORIGINAL)}?=`;
}

function base64Lines(bytes) {
	const b = sodium.to_base64(bytes, sodium.base64_variants.ORIGINAL);
	const out = [];
	for (let i = 0; i < b.length; i += 76)
		out.push(b.slice(i, i + 76));
	return out.join("\r\n");
}

// RFC 2231 for a file name that is not plain ASCII (or has quotes).
function filenameParam(name) {
	if (/^[\x20-\x7e]*$/.test(name) && !/["\\]/.test(name))
		return `filename="${name}"`;
	return "filename*=UTF-8''" + encodeURIComponent(name).replace(/['()*]/g,
		(c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

function buildReply(doc, text, files) {
	const boundary = "sp-" + randomHex(16);
	const from = addressOf(doc.to), to = addressOf(doc.from), irt = msgId(doc.messageId);
	const subject = "Re: " + (doc.subject || "").replace(/^\s*re:\s*/i, "");
	const h = [
		`Content-Type: multipart/mixed; boundary="${boundary}"; hp="cipher"`,
		"MIME-Version: 1.0",
	];
	if (from)
		h.push(`From: <${from}>`);
	if (to)
		h.push(`To: <${to}>`);
	h.push(`Subject: ${encodedWord(subject.replace(/[\r\n]+/g, " "))}`);
	h.push(`Date: ${new Date().toUTCString()}`);
	h.push(`Message-ID: <${randomHex(16)}@sealpost.reply>`);
	if (irt)
		h.push(`In-Reply-To: ${irt}`, `References: ${irt}`);
	const parts = [h.join("\r\n") + "\r\n\r\n"];
	parts.push(`--${boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
	           `Content-Transfer-Encoding: base64\r\n\r\n` +
	           base64Lines(sodium.from_string(text.replace(/\r?\n/g, "\r\n"))) + "\r\n");
	for (const f of files)
		parts.push(`--${boundary}\r\nContent-Type: application/octet-stream\r\n` +
		           `Content-Disposition: attachment; ${filenameParam(f.name)}\r\n` +
		           `Content-Transfer-Encoding: base64\r\n\r\n` + base64Lines(f.bytes) + "\r\n");
	parts.push(`--${boundary}--\r\n`);
	return sodium.from_string(parts.join(""));
}

function replyStatus(text, ok = false) {
	$("reply-status").textContent = text;
	$("reply-status").className = ok ? "ok" : "";
}

function replyError(text) {
	$("reply-error").textContent = text;
	show("reply-error", text !== "");
}

async function replyRefusal(res) {
	let code = "";
	try {
		code = (await json(res)).error || "";
	} catch (e) {
		code = "";
	}
	if (res.status === 401 || res.status === 403)
		return "This page may no longer send replies for this message.";
	if (res.status === 413)
		return "The reply with its attachments is too large.";
	if (res.status === 429 && code === "wait")
		return "Please wait a little before sending another reply.";
	if (res.status === 429)
		return "No more replies can be sent from this message.";
	return "The reply could not be sent. Please try again later.";
}

function setupReply(doc, cap) {
	const limit = Math.floor(cap.max * REPLY_ATTACH_SHARE);
	const to = addressOf(doc.from);
	$("reply-to").textContent = to || "the sender";
	$("reply-limit").textContent = `Attachments: up to ${size(limit)} in total.`;
	show("reply-card");
	$("reply-form").addEventListener("submit", async (ev) => {
		ev.preventDefault();
		const button = $("reply-send"), text = $("reply-text"), input = $("reply-files");
		replyError("");
		const picked = Array.from(input.files || []);
		const total = picked.reduce((n, f) => n + f.size, 0);
		if (total > limit) {
			replyError(`The attachments are ${size(total)}; at most ${size(limit)} in total.`);
			return;
		}
		button.disabled = text.disabled = input.disabled = true;
		try {
			replyStatus("Encrypting your reply…");
			const files = [];
			for (const f of picked)
				files.push({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) });
			const entity = buildReply(doc, text.value, files);
			let ct;
			try {
				const openpgp = await import("./openpgp.mjs");
				const key = await openpgp.readKey({ armoredKey: doc.senderKey });
				const message = await openpgp.createMessage({ binary: entity });
				ct = await openpgp.encrypt({ message, encryptionKeys: key, format: "binary" });
			} catch (e) {
				throw new Stop("The reply cannot be encrypted to the sender's key.");
			}
			sodium.memzero(entity);
			if (ct.length > cap.max)
				throw new Stop("The reply with its attachments is too large.");
			replyStatus("Sending your reply…");
			const headers = { "Authorization": `Bearer ${cap.token}`,
			                  "Content-Type": "application/pgp-encrypted" };
			const from = addressOf(doc.to), irt = msgId(doc.messageId);
			if (from)
				headers["Sealpost-Reply-From"] = from;
			if (irt)
				headers["Sealpost-In-Reply-To"] = irt;
			let res;
			try {
				res = await fetch(`/v2/${cap.idb}/reply`, { method: "POST", cache: "no-store",
				                  credentials: "same-origin", redirect: "error",
				                  referrerPolicy: "no-referrer", headers, body: ct });
			} catch (e) {
				throw new Stop("The viewer cannot be reached. Check your connection and try again.");
			}
			if (res.status !== 202)
				throw new Stop(await replyRefusal(res));
			text.value = "";
			input.value = "";
			replyStatus("Your reply was sent. Only the sender can read it.", true);
		} catch (e) {
			replyStatus("");
			replyError(e instanceof Stop ? e.message
			           : "Something went wrong in this page. Please reload it and try again.");
		} finally {
			button.disabled = text.disabled = input.disabled = false;
		}
	});
}

// ---- the unlock ----

async function unlock(link, paramsBytes, params, password) {
	const wipe = [];
	let keys = null;
	try {
		error("");
		status("Checking the password (this takes a few seconds)…");
		progress(0, 0);
		await paint();
		const pwd = v2.passwordBytes(password);
		wipe.push(pwd);
		const pw = v2.argon2id(sodium, pwd, params);
		wipe.push(pw);
		const input = v2.oprfInput(link.linkId, pw);
		wipe.push(input);
		const { blind, blinded } = v2.blind(sodium, input);
		wipe.push(blind);

		const idb = v2.b64urlEncode(link.linkId);
		let res = await api(`/v2/${idb}/evaluate`, { blinded: v2.b64urlEncode(blinded) });
		if (res.status !== 200)
			return await refusal(res);
		const j = await json(res);
		const evaluated = b64(j.evaluated, v2.ELEMENT_BYTES);
		const attempt = b64(j.attempt, v2.ATTEMPT_BYTES);
		let y;
		try {
			y = v2.finalize(sodium, input, blind, evaluated);
		} catch (e) {
			throw new Stop("The viewer sent an answer this page does not understand.");
		}
		wipe.push(y);
		keys = v2.deriveKeys(sodium, y, link.linkId, link.linkSecret);
		const proof = v2.unlockProof(sodium, keys.authSk, link.linkId, attempt);

		res = await api(`/v2/${idb}/unlock`, { attempt: v2.b64urlEncode(attempt),
		                                        proof: v2.b64urlEncode(proof) });
		if (res.status !== 200)
			return await refusal(res);
		replyCap = replyCapability(res, idb);
		status("Downloading the encrypted message…");
		const blob = await readBody(res, progress);
		if (blob.length < v2.SEALED_KEY_BYTES)
			throw new Stop("The viewer sent an answer this page does not understand.");
		let key;
		try {
			key = v2.unwrapKey(sodium, paramsBytes, blob.subarray(0, v2.SEALED_KEY_BYTES),
			                   link.linkId, keys.kwk);
		} catch (e) {
			throw new Stop("The message key does not open: the stored message is damaged.");
		}
		wipe.push(key);
		status("Decrypting…");
		progress(0, 1);
		await paint();
		let plain;
		try {
			plain = await v2.openMessage(sodium, blob.subarray(v2.SEALED_KEY_BYTES), key,
			                             decryptProgress());
			wipe.push(plain);
			if (v2.isViewDoc(plain))
				render(v2.parseViewDoc(plain));
			else
				renderOriginal(plain);
		} catch (e) {
			if (e instanceof v2.LinkError)
				throw new Stop("The message does not decrypt: it was changed or damaged.");
			throw e;
		}
		status("");
		progress(0, null);
		return null;
	} finally {
		for (const b of wipe)
			sodium.memzero(b);
		if (keys)
			v2.wipeKeys(sodium, keys);
	}
}

async function main() {
	let link;
	try {
		const id = location.pathname.slice(location.pathname.lastIndexOf("/") + 1);
		link = v2.parseLink(id, location.hash.slice(1));
	} catch (e) {
		show("loading", false);
		error("This link is incomplete: the part after “#” is missing or damaged. Copy the whole " +
		      "link from the e-mail (it is long) and try again.");
		return;
	}
	try {
		await sodium.ready;
		const res = await api(`/v2/${v2.b64urlEncode(link.linkId)}/params`);
		if (res.status !== 200) {
			show("loading", false);
			error((await refusal(res)).text);
			return;
		}
		const j = await json(res);
		const paramsBytes = b64(j.params, v2.PARAMS_BYTES);
		const params = v2.parseParams(paramsBytes);
		if (typeof j.sender === "string" && j.sender)
			$("from-line").textContent = `${j.sender} sent you this message encrypted.`;
		if (typeof j.hint === "string" && j.hint) {
			$("hint").textContent = j.hint;
			show("hint-line");
		}
		show("loading", false);
		show("unlock");
		$("pw").focus();

		$("form").addEventListener("submit", async (ev) => {
			ev.preventDefault();
			const field = $("pw"), button = $("open");
			field.disabled = button.disabled = true;
			let r;
			try {
				r = await unlock(link, paramsBytes, params, field.value);
			} catch (e) {
				if (e instanceof Stop)
					r = { text: e.message, final: e.final };
				else if (e instanceof v2.LinkError && e.code === "password")
					r = { text: "A password is 1 to 1024 bytes long.", final: false };
				else
					r = { text: "Something went wrong in this page. Please reload it and try again.",
					      final: true };
			}
			field.value = "";
			if (r === null)
				return;
			status("");
			progress(0, null);
			error(r.text);
			if (r.final) {
				show("unlock", false);
				return;
			}
			field.disabled = button.disabled = false;
			field.focus();
		});
	} catch (e) {
		show("loading", false);
		error(e instanceof Stop ? e.message
		      : "This link's parameters cannot be read. Please try again later.");
	}
}

main();
