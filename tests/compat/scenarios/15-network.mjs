// Network policy through the SDK: the create options show up in the sandbox object, and they are
// enforced. Enforcement is measured against a TCP listener in a network namespace of its own that
// run.sh routes from the host (HUTCH_COMPAT_PEER): sandboxes may never reach the host itself, so
// the peer stands in for the internet. Without the peer, or when a sandbox without a policy
// cannot reach it either, the enforcement scenario SKIPs with that reason.
import { RemoteAPIError, SandboxError } from "tensorlake";
import { test, skip } from "../harness.mjs";
import { assert, createSandbox } from "../lib.mjs";

const PROBE = (host, port) => `
import socket
try:
    socket.create_connection(("${host}", ${port}), 3).close(); print("OK")
except Exception as e:
    print("BLOCKED", e)
`;

test("network: allowInternetAccess / allowOut / denyOut are kept on the sandbox", async () => {
	const a = await createSandbox({ allowInternetAccess: false });
	assert.deepEqual((await a.info()).network, { allowInternetAccess: false, allowOut: [], denyOut: [] });
	const b = await createSandbox({ allowOut: ["10.1.2.3", "192.0.2.0/24"], denyOut: ["192.168.0.0/16"] });
	assert.deepEqual((await b.info()).network, { allowInternetAccess: true, allowOut: ["10.1.2.3", "192.0.2.0/24"], denyOut: ["192.168.0.0/16"] });
	const c = await createSandbox();
	const n = (await c.info()).network;
	assert.ok(n === undefined || (n.allowInternetAccess === true && n.allowOut.length === 0 && n.denyOut.length === 0), JSON.stringify(n));
});

test("network: a host name that cannot resolve in allowOut is refused with the name in the message", async () => {
	let err = null;
	try {
		await createSandbox({ allowOut: ["no-such-host.invalid"] });
	} catch (e) {
		err = e;
	}
	assert.ok(err instanceof RemoteAPIError || err instanceof SandboxError, `expected a refusal, got ${err}`);
	assert.match(err.message, /no-such-host\.invalid/);
});

async function probe(opts, host, port) {
	const sbx = await createSandbox({ image: undefined, memoryMb: 256, ...opts });
	const r = await sbx.run("python3", { args: ["-c", PROBE(host, port)] });
	assert.equal(r.exitCode, 0, r.stderr);
	return r.stdout.trim();
}

test("network: the policy is enforced (no internet, deny_out, allow_out)", async () => {
	const peer = process.env.HUTCH_COMPAT_PEER;
	if (!peer) skip("no peer network namespace (run.sh could not create one)");
	const [host, port] = peer.split(":");
	const open = await probe({}, host, port);
	if (!open.startsWith("OK")) skip(`a sandbox without a policy cannot reach the peer ${peer} either (${open})`);
	assert.match(await probe({ allowInternetAccess: false }, host, port), /^BLOCKED/, "allowInternetAccess:false");
	assert.match(await probe({ denyOut: [`${host}/32`] }, host, port), /^BLOCKED/, "denyOut the peer");
	assert.match(await probe({ allowOut: ["192.0.2.77"] }, host, port), /^BLOCKED/, "allowOut elsewhere is default deny");
	assert.match(await probe({ allowOut: [host] }, host, port), /^OK/, "allowOut the peer");
	assert.match(await probe({ allowOut: [host], denyOut: [host] }, host, port), /^BLOCKED/, "deny wins over allow");
});
