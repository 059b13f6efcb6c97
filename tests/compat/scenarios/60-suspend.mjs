// Suspend and resume through the SDK: a named sandbox keeps its processes (with their memory)
// across a suspend; the proxy wakes a suspended sandbox; ephemeral sandboxes refuse.
import { RemoteAPIError, Sandbox } from "tensorlake";
import { test } from "../harness.mjs";
import { assert, client, createSandbox, eventually, rejectsWith, sleep } from "../lib.mjs";

const COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.2; done";

async function count(sbx) {
	return Number((await sbx.run("cat", { args: ["/tmp/count"] })).stdout);
}

test("suspend: suspend() and resume() keep a running process and its memory", async () => {
	const sbx = await createSandbox({ name: "compat-suspend" });
	const p = await sbx.startProcess("sh", { args: ["-c", COUNTER] });
	await eventually(async () => (await count(sbx)) >= 5, 10_000, "the counter to reach 5");
	await sbx.suspend();
	assert.equal(await sbx.status(), "suspended");
	const info = await client.get(sbx.sandboxId);
	assert.equal(info.status, "suspended");
	await sleep(1500);
	await sbx.resume();
	assert.equal(await sbx.status(), "running");
	const after = await sbx.getProcess(p.pid);
	assert.equal(after.status, "running", "the process survived the suspend");
	const c1 = await count(sbx);
	assert.ok(c1 >= 5, `counter restarted: ${c1}`);
	await sleep(1000);
	const c2 = await count(sbx);
	assert.ok(c2 > c1, `counter does not advance after resume (${c1} → ${c2})`);
});

test("suspend: wait:false, then the proxy wakes the sandbox on the next call", async () => {
	const sbx = await createSandbox({ name: "compat-autowake" });
	await sbx.writeFile("/tmp/state", new TextEncoder().encode("kept"));
	await client.suspend(sbx.sandboxId, { wait: false });
	await eventually(async () => (await client.get(sbx.sandboxId)).status === "suspended", 30_000, "suspended");
	const r = await sbx.run("cat", { args: ["/tmp/state"] });
	assert.equal(r.stdout, "kept");
	assert.equal((await client.get(sbx.sandboxId)).status, "running");
});

test("suspend: an ephemeral sandbox cannot be suspended (RemoteAPIError 400)", async () => {
	const sbx = await createSandbox();
	const e = await rejectsWith(sbx.suspend(), RemoteAPIError, "suspending an ephemeral sandbox");
	assert.equal(e.statusCode, 400);
	assert.equal(await sbx.status(), "running");
});

test("suspend: Sandbox.connect by name to a suspended sandbox, then resume", async () => {
	const sbx = await createSandbox({ name: "compat-suspend-connect" });
	await sbx.suspend();
	const h = await Sandbox.connect({ sandboxId: "compat-suspend-connect" });
	await h.resume();
	assert.equal((await h.run("echo", { args: ["back"] })).stdout, "back");
});
