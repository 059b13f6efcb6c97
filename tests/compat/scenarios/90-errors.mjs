// The SDK's error types against hutch's answers: unknown sandboxes, bad and missing keys, a
// sandbox after terminate.
import { RemoteAPIError, Sandbox, SandboxClient, SandboxError, SandboxNotFoundError } from "tensorlake";
import { test } from "../harness.mjs";
import { assert, client, createSandbox, forget, rejectsWith } from "../lib.mjs";

const UNKNOWN = "aaaaaaaaaaaaaaaaaaaaa";

test("errors: unknown sandbox → SandboxNotFoundError (get, connect+run, update, delete, suspend)", async () => {
	const e = await rejectsWith(client.get(UNKNOWN), SandboxNotFoundError, "get");
	assert.equal(e.sandboxId, UNKNOWN);
	const h = await Sandbox.connect({ sandboxId: UNKNOWN });
	await rejectsWith(h.run("true"), SandboxNotFoundError, "run on a connected unknown id");
	await rejectsWith(client.update(UNKNOWN, { name: "x" }), SandboxNotFoundError, "update");
	await rejectsWith(client.delete(UNKNOWN), SandboxNotFoundError, "delete");
	await rejectsWith(client.suspend(UNKNOWN), SandboxNotFoundError, "suspend");
	await rejectsWith(client.get("no-such-name"), SandboxNotFoundError, "get by unknown name");
});

test("errors: a bad key → RemoteAPIError 401 (api and proxy); no key → 401", async () => {
	const bad = new SandboxClient({ apiKey: "hk_badbadbadbad_0000000000000000000000000000000" });
	const e = await rejectsWith(bad.list(), RemoteAPIError, "list with a bad key");
	assert.equal(e.statusCode, 401);
	const e2 = await rejectsWith(Sandbox.create({ image: "busybox", apiKey: "nonsense" }), RemoteAPIError, "create with a bad key");
	assert.equal(e2.statusCode, 401);
	const sbx = await createSandbox();
	const direct = await Sandbox.connect({ sandboxId: sbx.sandboxId, proxyUrl: process.env.TENSORLAKE_SANDBOX_PROXY_URL, apiKey: "nonsense" });
	const e3 = await rejectsWith(direct.run("true"), RemoteAPIError, "proxy with a bad key");
	assert.equal(e3.statusCode, 401);
	const nokey = await fetch(`${process.env.HUTCH_COMPAT_API}/v1/namespaces/default/sandboxes`);
	assert.equal(nokey.status, 401);
});

test("errors: a terminated sandbox's proxy calls fail cleanly", async () => {
	const sbx = await createSandbox();
	await sbx.terminate();
	forget(sbx.sandboxId);
	const h = await Sandbox.connect({ sandboxId: sbx.sandboxId });
	let err = null;
	try {
		await h.run("true");
	} catch (x) {
		err = x;
	}
	assert.ok(err instanceof SandboxError, `expected a SandboxError, got ${err}`);
});

test("errors: a name already in use → RemoteAPIError 409; update to a reserved port is refused client-side", async () => {
	const a = await createSandbox({ name: "compat-dup" });
	const e = await rejectsWith(createSandbox({ name: "compat-dup" }), RemoteAPIError, "a second sandbox with the same name");
	assert.equal(e.statusCode, 409);
	let threw = false;
	try {
		await a.update({ exposedPorts: [9501] });
	} catch {
		threw = true;
	}
	assert.ok(threw, "exposing 9501 is refused");
	assert.deepEqual((await a.info()).exposedPorts, []);
});

test("errors: Sandbox.create with gpus is refused with 400 GPUS_UNAVAILABLE", async () => {
	const e = await rejectsWith(Sandbox.create({ image: "busybox", gpus: 1 }), RemoteAPIError, "gpus");
	assert.equal(e.statusCode, 400);
	assert.match(e.responseMessage, /GPUS_UNAVAILABLE/);
});
