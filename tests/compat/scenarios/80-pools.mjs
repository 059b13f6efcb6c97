// Warm pools through SandboxClient: create, get, list, update, claim (both ways), delete while
// in use (PoolInUseError), delete, and the not-found error.
import { PoolInUseError, PoolNotFoundError, Sandbox } from "tensorlake";
import { test } from "../harness.mjs";
import { assert, client, eventually, forget, own, rejectsWith } from "../lib.mjs";

test("pools: createPool, getPool, listPools, updatePool", async () => {
	const created = await client.createPool({ image: "busybox", cpus: 0.5, memoryMb: 128, ephemeralDiskMb: 1024, timeoutSecs: 0, maxContainers: 4, warmContainers: 1 });
	assert.ok(created.poolId);
	assert.equal(created.namespace, "default");
	try {
		const pool = await client.getPool(created.poolId);
		assert.equal(pool.poolId, created.poolId);
		assert.equal(pool.image, "busybox");
		assert.equal(pool.resources.cpus, 0.5);
		assert.equal(pool.resources.memoryMb, 128);
		assert.equal(pool.timeoutSecs, 0);
		assert.equal(pool.maxContainers, 4);
		assert.equal(pool.warmContainers, 1);
		assert.ok(Array.isArray(pool.containers));
		const warm = await eventually(async () => {
			const p = await client.getPool(created.poolId);
			return p.containers.length >= 1 && p;
		}, 30_000, "a warm container");
		assert.ok(warm.containers.every((c) => c.id && c.state && typeof c.executorId === "string"));
		const list = await client.listPools();
		assert.ok(list.some((p) => p.poolId === created.poolId));
		const upd = await client.updatePool(created.poolId, { image: "busybox", cpus: 1, memoryMb: 192, maxContainers: 2, warmContainers: 0 });
		assert.equal(upd.resources.memoryMb, 192);
		assert.equal(upd.maxContainers, 2);
		assert.equal(upd.warmContainers, 0);
		assert.equal((await client.getPool(created.poolId)).resources.cpus, 1);
	} finally {
		await client.deletePool(created.poolId).catch(() => {});
	}
});

test("pools: claim via Sandbox.create({poolId}) and SandboxClient.claim; delete in use is PoolInUseError", async () => {
	const { poolId } = await client.createPool({ image: "busybox", cpus: 0.5, memoryMb: 128, warmContainers: 1, maxContainers: 3 });
	const sbx = await Sandbox.create({ poolId });
	own(sbx.sandboxId);
	assert.equal((await sbx.run("echo", { args: ["claimed"] })).stdout, "claimed");
	const info = await sbx.info();
	assert.equal(info.poolId, poolId);
	assert.equal(info.image, "busybox");
	const claimed = await client.claim(poolId);
	own(claimed.sandboxId);
	assert.equal(claimed.status, "running");
	assert.notEqual(claimed.sandboxId, sbx.sandboxId);
	assert.ok(claimed.sandboxUrl);
	const h = await Sandbox.connect({ sandboxId: claimed.sandboxId });
	assert.equal((await h.run("hostname")).exitCode, 0);
	const e = await rejectsWith(client.deletePool(poolId), PoolInUseError, "deleting a pool in use");
	assert.equal(e.poolId, poolId);
	await sbx.terminate();
	await client.delete(claimed.sandboxId);
	forget(sbx.sandboxId);
	forget(claimed.sandboxId);
	await eventually(async () => {
		await client.deletePool(poolId);
		return true;
	}, 30_000, "deleting the pool once its sandboxes are gone");
	await rejectsWith(client.getPool(poolId), PoolNotFoundError, "a deleted pool");
});

test("pools: unknown pool is PoolNotFoundError for get, update, delete, claim", async () => {
	await rejectsWith(client.getPool("no-such-pool"), PoolNotFoundError, "getPool");
	await rejectsWith(client.updatePool("no-such-pool", { image: "busybox" }), PoolNotFoundError, "updatePool");
	await rejectsWith(client.deletePool("no-such-pool"), PoolNotFoundError, "deletePool");
	await rejectsWith(client.claim("no-such-pool"), PoolNotFoundError, "claim");
});
