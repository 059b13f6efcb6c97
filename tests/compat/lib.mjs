// Shared helpers for the compat scenarios: the SDK client configured from the environment that
// run.sh sets, sandbox creation with cleanup, raw HTTP for what the SDK cannot express, and the
// one rule for turning a documented "unavailable" answer into a SKIP.
import assert from "node:assert/strict";
import { RemoteAPIError, Sandbox, SandboxClient } from "tensorlake";
import { atExit, skip } from "./harness.mjs";

export const API = process.env.HUTCH_COMPAT_API;
export const PROXY = process.env.HUTCH_COMPAT_PROXY;
export const KEY = process.env.TENSORLAKE_API_KEY;
if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(process.env.TENSORLAKE_API_URL || ""))
	throw new Error("TENSORLAKE_API_URL must be http://127.0.0.1:PORT (see run.sh)");

export const client = new SandboxClient();
export const DEFAULT_IMAGE = undefined; // no image: the default Debian image with python3

const owned = new Set();
atExit(async () => {
	for (const id of owned) await client.delete(id).catch(() => {});
});

/** Sandbox.create with busybox defaults; the sandbox is terminated at the end of the run. */
export async function createSandbox(opts = {}) {
	const sbx = await Sandbox.create({ image: "busybox", cpus: 0.5, memoryMb: 256, ...opts });
	owned.add(sbx.sandboxId);
	return sbx;
}

/** Remembers a sandbox id created some other way (claim, copy, snapshot restore). */
export function own(id) {
	owned.add(id);
	return id;
}

export function forget(id) {
	owned.delete(id);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls fn until it returns a truthy value or timeoutMs passes; returns the value. */
export async function eventually(fn, timeoutMs = 10_000, what = "condition") {
	const end = Date.now() + timeoutMs;
	let last;
	while (Date.now() < end) {
		try {
			last = await fn();
			if (last) return last;
		} catch (e) {
			last = e;
		}
		await sleep(100);
	}
	throw new Error(`${what} did not hold within ${timeoutMs} ms (last: ${last})`);
}

/** The error code in a RemoteAPIError's raw body, if it is hutch's {"error","code"} JSON. */
export function errorCode(err) {
	try {
		return JSON.parse(err.responseMessage ?? "").code;
	} catch {
		return undefined;
	}
}

/**
 * SKIPs the scenario when err is one of the documented "this server cannot do that" answers:
 * 501, or 400 with one of codes (e.g. MEMORY_SNAPSHOT_UNAVAILABLE). Anything else is rethrown.
 */
export function skipIfUnavailable(err, codes = []) {
	if (err instanceof RemoteAPIError) {
		const code = errorCode(err);
		if (err.statusCode === 501 || (err.statusCode === 400 && codes.includes(code)))
			skip(`server answered ${err.statusCode} ${code ?? ""}: ${err.responseMessage}`.trim());
	}
	throw err;
}

/** Calls the hutch api directly (flat routes, admin key). Returns {status, json, text}. */
export async function rawApi(method, path, body, headers = {}) {
	const res = await fetch(API + path, {
		method,
		headers: { authorization: `Bearer ${KEY}`, ...(body ? { "content-type": "application/json" } : {}), ...headers },
		body: body ? JSON.stringify(body) : undefined,
	});
	const text = await res.text();
	let json;
	try {
		json = JSON.parse(text);
	} catch {
		json = undefined;
	}
	return { status: res.status, json, text };
}

/** Asserts that promise rejects with an instance of cls; returns the error. */
export async function rejectsWith(promise, cls, what) {
	try {
		await promise;
	} catch (e) {
		assert.ok(e instanceof cls, `${what}: expected ${cls.name}, got ${e?.name}: ${e?.message}`);
		return e;
	}
	assert.fail(`${what}: expected ${cls.name}, but it succeeded`);
}

export { assert };
