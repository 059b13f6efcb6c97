// Network policy through the SDK: the create options show up in the sandbox object, and (once
// sandboxes have networking) they are enforced. The enforcement checks measure against a TCP
// listener on the host reached through the sandbox's default gateway; a sandbox without a route,
// or one that cannot reach the host even without a policy, makes them SKIP with that reason.
import net from "node:net";
import { test, skip } from "../harness.mjs";
import { assert, createSandbox } from "../lib.mjs";

const PROBE = (port) => `
import socket, struct, sys
gw = None
for l in open("/proc/net/route").read().splitlines()[1:]:
    f = l.split()
    if f[1] == "00000000":
        gw = socket.inet_ntoa(struct.pack("<L", int(f[2], 16)))
if not gw:
    print("NOROUTE"); sys.exit(0)
try:
    socket.create_connection((gw, ${port}), 3).close(); print("OK", gw)
except Exception as e:
    print("BLOCKED", gw, e)
`;

test("network: allowInternetAccess / allowOut / denyOut are kept on the sandbox", async () => {
	const a = await createSandbox({ allowInternetAccess: false });
	assert.deepEqual((await a.info()).network, { allowInternetAccess: false, allowOut: [], denyOut: [] });
	const b = await createSandbox({ allowOut: ["10.1.2.3", "example.com"], denyOut: ["192.168.0.0/16"] });
	assert.deepEqual((await b.info()).network, { allowInternetAccess: true, allowOut: ["10.1.2.3", "example.com"], denyOut: ["192.168.0.0/16"] });
	const c = await createSandbox();
	const n = (await c.info()).network;
	assert.ok(n === undefined || (n.allowInternetAccess === true && n.allowOut.length === 0 && n.denyOut.length === 0), JSON.stringify(n));
});

async function probe(opts, port) {
	const sbx = await createSandbox({ image: undefined, memoryMb: 256, ...opts });
	const r = await sbx.run("python3", { args: ["-c", PROBE(port)] });
	assert.equal(r.exitCode, 0, r.stderr);
	return r.stdout.trim();
}

test("network: the policy is enforced (no internet, deny_out, allow_out)", async () => {
	const server = net.createServer((s) => s.end());
	await new Promise((r) => server.listen(0, "0.0.0.0", r));
	const port = server.address().port;
	try {
		const open = await probe({}, port);
		if (open === "NOROUTE") skip("sandboxes have no default route yet (networking not wired)");
		if (!open.startsWith("OK")) skip(`a sandbox without a policy cannot reach the host listener either (${open})`);
		const gw = open.split(" ")[1];
		assert.match(await probe({ allowInternetAccess: false }, port), /^(BLOCKED|NOROUTE)/, "allowInternetAccess:false");
		assert.match(await probe({ denyOut: [`${gw}/32`] }, port), /^(BLOCKED|NOROUTE)/, "denyOut the gateway");
		assert.match(await probe({ allowOut: ["192.0.2.1"] }, port), /^(BLOCKED|NOROUTE)/, "allowOut elsewhere is default deny");
		assert.match(await probe({ allowOut: [gw] }, port), /^OK/, "allowOut the gateway");
	} finally {
		server.close();
	}
});
