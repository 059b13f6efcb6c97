// Snapshots through the SDK: filesystem and memory checkpoints, get/list/delete, restoring with
// Sandbox.create({snapshotId}), live copies. Memory snapshots need CRIU on the host: the
// documented 400 MEMORY_SNAPSHOT_UNAVAILABLE (or a 501) is a SKIP, any other failure a FAIL.
import { RemoteAPIError, Sandbox, SnapshotStatus } from "tensorlake";
import { test } from "../harness.mjs";
import { assert, client, createSandbox, eventually, own, rejectsWith, skipIfUnavailable, sleep } from "../lib.mjs";

const UNAVAILABLE = ["MEMORY_SNAPSHOT_UNAVAILABLE"];
const COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.2; done";
const ready = (s) => s === SnapshotStatus.LOCAL_READY || s === SnapshotStatus.COMPLETED;

async function restore(snapshotId, opts = {}) {
	const sbx = await Sandbox.create({ snapshotId, ...opts });
	own(sbx.sandboxId);
	return sbx;
}

test("snapshots: filesystem checkpoint, get, list, restore, delete", async () => {
	const sbx = await createSandbox({ name: "compat-fs-snap" });
	await sbx.writeFile("/srv/marker", new TextEncoder().encode("from-the-snapshot"));
	let snap;
	try {
		snap = await sbx.checkpoint({ checkpointType: "filesystem", timeout: 90 });
	} catch (e) {
		skipIfUnavailable(e);
	}
	assert.ok(snap?.snapshotId, "checkpoint returns the snapshot");
	assert.ok(ready(snap.status), `status ${snap.status}`);
	assert.equal(snap.sandboxId, sbx.sandboxId);
	assert.equal(snap.snapshotType, "filesystem");
	assert.equal(await sbx.status(), "running", "the source keeps running");
	const got = await Sandbox.getSnapshot(snap.snapshotId);
	assert.equal(got.snapshotId, snap.snapshotId);
	assert.equal(got.namespace, "default");
	assert.ok((await Sandbox.listSnapshots()).some((s) => s.snapshotId === snap.snapshotId));
	assert.ok((await sbx.listSnapshots()).some((s) => s.snapshotId === snap.snapshotId));
	assert.ok((await client.listSnapshots()).some((s) => s.snapshotId === snap.snapshotId));
	const copy = await restore(snap.snapshotId, { cpus: 0.5, memoryMb: 256 });
	assert.notEqual(copy.sandboxId, sbx.sandboxId);
	assert.equal((await copy.run("cat", { args: ["/srv/marker"] })).stdout, "from-the-snapshot");
	const info = await copy.info();
	assert.equal(info.image, "busybox", "the restore keeps the snapshot's image");
	await sbx.writeFile("/srv/marker", new TextEncoder().encode("changed later"));
	assert.equal((await copy.run("cat", { args: ["/srv/marker"] })).stdout, "from-the-snapshot");
	await Sandbox.deleteSnapshot(snap.snapshotId);
	const e = await rejectsWith(Sandbox.getSnapshot(snap.snapshotId), RemoteAPIError, "a deleted snapshot");
	assert.equal(e.statusCode, 404);
	assert.equal((await copy.run("cat", { args: ["/srv/marker"] })).stdout, "from-the-snapshot", "a restored sandbox outlives its snapshot");
}, { timeout: 240_000 });

test("snapshots: SandboxClient.snapshot (no wait) and snapshotAndWait(completed)", async () => {
	const sbx = await createSandbox();
	let res;
	try {
		res = await client.snapshot(sbx.sandboxId);
	} catch (e) {
		skipIfUnavailable(e);
	}
	assert.ok(res.snapshotId);
	assert.ok(["in_progress", "local_ready", "completed"].includes(res.status), res.status);
	const done = await eventually(async () => {
		const s = await client.getSnapshot(res.snapshotId);
		return ready(s.status) && s;
	}, 120_000, "the snapshot to be ready");
	assert.equal(done.sandboxId, sbx.sandboxId);
	await eventually(async () => (await sbx.status()) === "running", 30_000, "the source back to running");
	const waited = await client.snapshotAndWait(sbx.sandboxId, { snapshotType: "filesystem", waitUntil: "completed", timeout: 90 });
	assert.equal(waited.status, "completed");
	const none = await sbx.checkpoint({ wait: false, checkpointType: "filesystem" });
	assert.equal(none, undefined);
	await client.deleteSnapshot(res.snapshotId);
	await client.deleteSnapshot(waited.snapshotId);
}, { timeout: 240_000 });

test("snapshots: memory checkpoint restores running processes with their memory", async () => {
	const sbx = await createSandbox({ name: "compat-mem-snap" });
	const p = await sbx.startProcess("sh", { args: ["-c", COUNTER] });
	await eventually(async () => Number((await sbx.run("cat", { args: ["/tmp/count"] })).stdout) >= 5, 10_000, "counter");
	let snap;
	try {
		snap = await sbx.checkpoint({ checkpointType: "memory", timeout: 90 });
	} catch (e) {
		skipIfUnavailable(e, UNAVAILABLE);
	}
	assert.equal(snap.snapshotType, "memory");
	const clone = await restore(snap.snapshotId);
	const proc = await clone.getProcess(p.pid);
	assert.equal(proc.status, "running", "the process runs in the restored sandbox");
	const c1 = Number((await clone.run("cat", { args: ["/tmp/count"] })).stdout);
	assert.ok(c1 >= 5, `counter in the clone restarted from ${c1}`);
	await sleep(1000);
	const c2 = Number((await clone.run("cat", { args: ["/tmp/count"] })).stdout);
	assert.ok(c2 > c1, "the clone's counter advances");
	await Sandbox.deleteSnapshot(snap.snapshotId);
}, { timeout: 240_000 });

test("copy: sandbox.copy({times: 2}) gives two running copies with the same state", async () => {
	const sbx = await createSandbox({ name: "compat-copy-src" });
	await sbx.writeFile("/tmp/copied", new TextEncoder().encode("same"));
	await sbx.startProcess("sh", { args: ["-c", COUNTER] });
	await eventually(async () => Number((await sbx.run("cat", { args: ["/tmp/count"] })).stdout) >= 5, 10_000, "counter");
	let res;
	try {
		res = await sbx.copy({ times: 2, requestTimeout: 180 });
	} catch (e) {
		skipIfUnavailable(e, UNAVAILABLE);
	}
	assert.equal(res.sourceSandboxId, sbx.sandboxId);
	assert.equal(res.sandboxes.length, 2);
	const ids = new Set();
	for (const c of res.sandboxes) {
		own(c.sandboxId);
		assert.equal(c.status, "running", JSON.stringify(c));
		assert.ok(c.sandboxUrl, "a copy entry carries sandbox_url");
		ids.add(c.sandboxId);
		const h = await Sandbox.connect({ sandboxId: c.sandboxId });
		assert.equal((await h.run("cat", { args: ["/tmp/copied"] })).stdout, "same");
		const c1 = Number((await h.run("cat", { args: ["/tmp/count"] })).stdout);
		assert.ok(c1 >= 5, `the copy's counter restarted from ${c1}`);
		await eventually(async () => Number((await h.run("cat", { args: ["/tmp/count"] })).stdout) > c1, 5000, "the copy's counter to advance");
	}
	assert.equal(ids.size, 2);
	assert.ok(!ids.has(sbx.sandboxId));
	assert.equal(await sbx.status(), "running");
}, { timeout: 240_000 });
