// Sandbox lifecycle through the SDK: create with every option, the default image, connect by id
// and by name, list, update and the port helpers, terminate.
import http from "node:http";
import { Sandbox, SandboxStatus } from "tensorlake";
import { test } from "../harness.mjs";
import { assert, client, createSandbox, eventually, forget, rawApi } from "../lib.mjs";

/** GET / on the proxy with the given Host header (fetch cannot set Host); resolves the status. */
function proxyStatus(host) {
	return new Promise((resolve, reject) => {
		const req = http.get(`${process.env.HUTCH_COMPAT_PROXY}/`, { headers: { host } }, (res) => {
			res.resume();
			resolve(res.statusCode);
		});
		req.on("error", reject);
	});
}

test("lifecycle: Sandbox.create(busybox) with cpus, memoryMb, diskMb, timeoutSecs, entrypoint, name", async () => {
	const entrypoint = ["/bin/sh", "-c", "echo booted > /tmp/ep; exec sleep 100000"];
	const sbx = await createSandbox({
		cpus: 1.5, memoryMb: 256, diskMb: 2048, timeoutSecs: 900, entrypoint, name: "compat-opts",
	});
	assert.equal(sbx.name, "compat-opts");
	const info = await sbx.info();
	assert.equal(info.status, SandboxStatus.RUNNING);
	assert.equal(info.sandboxId, sbx.sandboxId);
	assert.equal(info.image, "busybox");
	assert.equal(info.name, "compat-opts");
	assert.deepEqual(info.resources, { cpus: 1.5, memoryMb: 256, ephemeralDiskMb: 2048 });
	assert.equal(info.timeoutSecs, 900);
	assert.deepEqual(info.entrypoint, entrypoint);
	assert.ok(info.createdAt instanceof Date && Math.abs(info.createdAt - Date.now()) < 600_000,
		`createdAt ${info.createdAt} is not a recent date`);
	const ep = await eventually(async () => {
		const r = await sbx.run("cat", { args: ["/tmp/ep"] });
		return r.exitCode === 0 && r;
	}, 10_000, "the entrypoint's file");
	assert.equal(ep.stdout, "booted");
	const df = await sbx.run("df", { args: ["-m", "/"] });
	const size = Number(df.stdout.split("\n")[1]?.trim().split(/\s+/)[1]);
	assert.ok(size > 1700 && size <= 2048, `root disk is ${size} MB, want about 2048 (diskMb)`);
	const oom = await sbx.run("dd", { args: ["if=/dev/zero", "of=/dev/null", "bs=400M", "count=1"] });
	assert.notEqual(oom.exitCode, 0, "a 400 MB buffer should hit the 256 MB memory limit");
});

test("lifecycle: Sandbox.create() with no image runs the default image (python3)", async () => {
	const sbx = await createSandbox({ image: undefined, cpus: 1.0, memoryMb: 512 });
	const r = await sbx.run("python3", { args: ["-c", "import sys; print(sys.version_info[0])"] });
	assert.equal(r.exitCode, 0, r.stderr);
	assert.equal(r.stdout, "3");
	const info = await sbx.info();
	assert.equal(info.status, "running");
	assert.deepEqual(info.resources, { cpus: 1, memoryMb: 512, ephemeralDiskMb: info.resources.ephemeralDiskMb });
	assert.ok(info.resources.ephemeralDiskMb > 0, "ephemeralDiskMb is reported");
});

test("lifecycle: Sandbox.create(image tensorlake/ubuntu-minimal) means the default image", async () => {
	const sbx = await createSandbox({ image: "tensorlake/ubuntu-minimal" });
	const r = await sbx.run("python3", { args: ["-c", "print(1+1)"] });
	assert.equal(r.stdout, "2");
});

test("lifecycle: Sandbox.connect by id and by name, with and without proxyUrl", async () => {
	const sbx = await createSandbox({ name: "compat-conn" });
	await sbx.writeFile("/tmp/who", new TextEncoder().encode("me"));
	const byId = await Sandbox.connect({ sandboxId: sbx.sandboxId });
	assert.equal((await byId.run("cat", { args: ["/tmp/who"] })).stdout, "me");
	const byName = await Sandbox.connect({ sandboxId: "compat-conn" });
	assert.equal((await byName.run("cat", { args: ["/tmp/who"] })).stdout, "me");
	assert.equal((await byName.info()).sandboxId, sbx.sandboxId);
	assert.equal(byName.name, "compat-conn");
	// an explicit proxyUrl skips the lifecycle lookup: the proxy sees the name in Host
	const direct = await Sandbox.connect({ sandboxId: "compat-conn", proxyUrl: process.env.TENSORLAKE_SANDBOX_PROXY_URL });
	assert.equal((await direct.run("cat", { args: ["/tmp/who"] })).stdout, "me");
	const h = await byId.health();
	assert.equal(h.healthy, true);
	const d = await byId.daemonInfo();
	assert.equal(typeof d.version, "string");
	assert.ok(d.uptimeSecs >= 0 && d.totalProcesses >= 0);
});

test("lifecycle: Sandbox.list and SandboxClient.list include live sandboxes", async () => {
	const a = await createSandbox({ name: "compat-list" });
	const list = await Sandbox.list();
	const mine = list.find((s) => s.sandboxId === a.sandboxId);
	assert.ok(mine, `sandbox ${a.sandboxId} not in Sandbox.list()`);
	assert.equal(mine.name, "compat-list");
	assert.equal(mine.status, "running");
	const list2 = await client.list();
	assert.ok(list2.some((s) => s.sandboxId === a.sandboxId));
	assert.ok(list2.every((s) => typeof s.namespace === "string" && s.resources));
});

test("lifecycle: update name; exposePorts / unexposePorts; getPortAccess", async () => {
	const sbx = await createSandbox();
	assert.equal(sbx.name, null);
	const upd = await sbx.update({ name: "compat-renamed" });
	assert.equal(upd.name, "compat-renamed");
	assert.equal(sbx.name, "compat-renamed");
	assert.equal((await client.get("compat-renamed")).sandboxId, sbx.sandboxId);
	let info = await client.exposePorts(sbx.sandboxId, [8080, 3000]);
	assert.deepEqual(info.exposedPorts, [3000, 8080]);
	assert.equal(info.allowUnauthenticatedAccess, false);
	info = await client.exposePorts(sbx.sandboxId, [8080, 5000], { allowUnauthenticatedAccess: true });
	assert.deepEqual(info.exposedPorts, [3000, 5000, 8080]);
	assert.equal(info.allowUnauthenticatedAccess, true);
	const access = await client.getPortAccess(sbx.sandboxId);
	assert.deepEqual(access.exposedPorts, [3000, 5000, 8080]);
	assert.equal(access.allowUnauthenticatedAccess, true);
	assert.ok(access.sandboxUrl, "getPortAccess has a sandboxUrl");
	info = await client.unexposePorts(sbx.sandboxId, [3000, 8080]);
	assert.deepEqual(info.exposedPorts, [5000]);
	assert.equal(info.allowUnauthenticatedAccess, true);
	info = await client.unexposePorts(sbx.sandboxId, [5000]);
	assert.deepEqual(info.exposedPorts, []);
	assert.equal(info.allowUnauthenticatedAccess, false, "emptied list forces private access");
	const both = await sbx.update({ exposedPorts: [9000, 80, 9000], allowUnauthenticatedAccess: true });
	assert.deepEqual(both.exposedPorts, [80, 9000]);
	assert.equal(both.allowUnauthenticatedAccess, true);
	// what the proxy enforces follows: a private exposed port needs the key
	await sbx.update({ allowUnauthenticatedAccess: false });
	const status = await proxyStatus(`80-${sbx.sandboxId}.local`);
	assert.equal(status, 401, `an unauthenticated request to a private port answers ${status}`);
});

test("lifecycle: timeoutSecs: an idle ephemeral sandbox terminates, an idle named one suspends", async () => {
	const eph = await createSandbox({ timeoutSecs: 2 });
	const named = await createSandbox({ timeoutSecs: 2, name: "compat-idle" });
	await eventually(async () => (await client.get(eph.sandboxId)).status === "terminated", 20_000, "the ephemeral sandbox to time out");
	await eventually(async () => (await client.get(named.sandboxId)).status === "suspended", 20_000, "the named sandbox to suspend");
	assert.equal((await named.run("echo", { args: ["woken"] })).stdout, "woken", "proxy traffic wakes it");
}, { timeout: 60_000 });

test("lifecycle: terminate ends the sandbox; terminate again is harmless", async () => {
	const sbx = await createSandbox();
	await sbx.terminate();
	forget(sbx.sandboxId);
	const info = await client.get(sbx.sandboxId);
	assert.equal(info.status, "terminated");
	assert.ok(info.terminatedAt instanceof Date, "terminatedAt is set");
	await client.delete(sbx.sandboxId);
	const list = await Sandbox.list();
	const entry = list.find((s) => s.sandboxId === sbx.sandboxId);
	assert.ok(!entry || entry.status === "terminated");
	const raw = await rawApi("GET", `/sandboxes/${sbx.sandboxId}`);
	assert.equal(raw.json.status, "terminated");
});
