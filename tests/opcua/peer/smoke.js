// Checks server.js with node-opcua's own client, so that a failing Strata
// test can be told apart from a broken test peer:
//
//   node smoke.js
//
// Starts server.js (fresh PKI in a temporary directory, then again on the
// same PKI, then requiring trusted client certificates), connects with every
// offered policy and mode, anonymous and UserName, reads, writes, browses
// (with continuation points), subscribes, and checks the refusals (wrong
// password, untrusted client certificate, too many nodes per Read). Prints
// the server's start-up times. Exits 0 when everything held.
"use strict";
require("./compat");

const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { spawn } = require("node:child_process");
const {
    OPCUAClient,
    OPCUACertificateManager,
    MessageSecurityMode,
    SecurityPolicy,
    AttributeIds,
    UserTokenType,
    DataType,
    StatusCodes,
    TimestampsToReturn,
} = require("node-opcua");

const NS = 2;
const id = (s) => `ns=${NS};s=${s}`;
const USER = "operator";
const PASSWORD = "s3cret";

// Starts server.js; resolves with {child, port, ms} once it prints `ready <port>`.
function startServer(pki, extraArgs = []) {
    const started = Date.now();
    const child = spawn(process.execPath, [path.join(__dirname, "server.js"), "--pki", pki, "--port", "0",
        "--user", USER, "--password", PASSWORD, ...extraArgs], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ready line in 60 s; stderr:\n${stderr}`)), 60000);
        let out = "";
        child.stdout.on("data", (d) => {
            out += d;
            const m = out.match(/^ready (\d+)\n/);
            if (m) {
                clearTimeout(timer);
                resolve({ child, port: Number(m[1]), ms: Date.now() - started, stderr: () => stderr, stdout: () => out });
            }
        });
        child.on("exit", (code) => reject(new Error(`server exited (${code}) before ready; stderr:\n${stderr}`)));
    });
}

// SIGTERM to the server's PID; resolves with its exit code and the time it took.
function stopServer(server) {
    const started = Date.now();
    return new Promise((resolve) => {
        server.child.on("exit", (code) => resolve({ code, ms: Date.now() - started }));
        server.child.kill("SIGTERM");
    });
}

function makeClient(clientPki, securityPolicy, securityMode) {
    return OPCUAClient.create({
        applicationName: "strata-smoke",
        applicationUri: "urn:strata:smoke-client",
        securityPolicy,
        securityMode,
        endpointMustExist: false,
        connectionStrategy: { maxRetry: 0, initialDelay: 100, maxDelay: 200 },
        clientCertificateManager: new OPCUACertificateManager({
            rootFolder: clientPki,
            automaticallyAcceptUnknownCertificate: true,
        }),
    });
}

async function withSession(url, clientPki, policy, mode, identity, fn) {
    const client = makeClient(clientPki, policy, mode);
    await client.connect(url);
    try {
        const session = await client.createSession(identity);
        try {
            return await fn(session, client);
        } finally {
            await session.close();
        }
    } finally {
        await client.disconnect();
    }
}

async function readValue(session, nodeId) {
    const dv = await session.read({ nodeId, attributeId: AttributeIds.Value });
    assert.equal(dv.statusCode.value, StatusCodes.Good.value, `read ${nodeId}: ${dv.statusCode}`);
    return dv.value.value;
}

const combos = [
    [SecurityPolicy.None, MessageSecurityMode.None],
    [SecurityPolicy.Basic256Sha256, MessageSecurityMode.Sign],
    [SecurityPolicy.Basic256Sha256, MessageSecurityMode.SignAndEncrypt],
    [SecurityPolicy.Aes128_Sha256_RsaOaep, MessageSecurityMode.Sign],
    [SecurityPolicy.Aes128_Sha256_RsaOaep, MessageSecurityMode.SignAndEncrypt],
];
const label = (policy, mode) => `${policy.split("#")[1]}/${MessageSecurityMode[mode]}`;
const userIdentity = { type: UserTokenType.UserName, userName: USER, password: PASSWORD };

async function checkEveryEndpoint(url, clientPki) {
    for (const [policy, mode] of combos) {
        for (const identity of [undefined, userIdentity]) {
            await withSession(url, clientPki, policy, mode, identity, async (session) => {
                const a = await readValue(session, id("PLC1.Line1.Counter"));
                const b = await readValue(session, id("PLC1.Line1.Counter"));
                assert.ok(typeof a === "number" && b >= a);
            });
        }
        console.log(`ok  ${label(policy, mode)}: anonymous and UserName sessions read`);
    }
}

async function checkData(url, clientPki) {
    await withSession(url, clientPki, SecurityPolicy.Basic256Sha256, MessageSecurityMode.SignAndEncrypt, undefined,
        async (session) => {
            const ns = await readValue(session, "ns=0;i=2255");  // Server_NamespaceArray
            assert.equal(ns[NS], "urn:strata:test-plc");

            assert.equal(await readValue(session, id("PLC1.Line1.Running")), true);
            assert.equal(await readValue(session, id("PLC1.Line1.Recipe")), "R-100");
            const speeds = await readValue(session, id("PLC1.Line1.Speeds"));
            assert.equal(speeds.length, 4);
            assert.equal(typeof (await readValue(session, id("PLC1.Line1.Temperature"))), "number");
            const matrix = await session.read({ nodeId: id("PLC1.Types.Matrix"), attributeId: AttributeIds.Value });
            assert.deepEqual(matrix.value.dimensions, [2, 3]);
            assert.deepEqual(await readValue(session, id("PLC1.Types.Int64")), [0x123, 0x456789ab]);

            // Write, then read back.
            const status = await session.write({
                nodeId: id("PLC1.Line1.Setpoint"),
                attributeId: AttributeIds.Value,
                value: { value: { dataType: DataType.Double, value: 12.5 } },
            });
            assert.equal(status.value, StatusCodes.Good.value, `write: ${status}`);
            assert.equal(await readValue(session, id("PLC1.Line1.Setpoint")), 12.5);
            const denied = await session.write({
                nodeId: id("PLC1.Line1.Counter"),
                attributeId: AttributeIds.Value,
                value: { value: { dataType: DataType.UInt32, value: 1 } },
            });
            assert.notEqual(denied.value, StatusCodes.Good.value, "Counter must not be writable");
            console.log("ok  read scalars, arrays, a matrix, Int64; write Setpoint and read it back; Counter read-only");

            // Browse and TranslateBrowsePath.
            const line1 = await session.browse(id("PLC1.Line1"));
            const names = line1.references.map((r) => r.browseName.name).sort();
            for (const n of ["Axis", "Counter", "Recipe", "Running", "Setpoint", "Speeds", "Temperature"])
                assert.ok(names.includes(n), `Line1 lacks ${n}: ${names}`);
            const tr = await session.translateBrowsePath({
                startingNode: "ns=0;i=85",  // Objects
                relativePath: {
                    elements: ["PLC1", "Line1", "Counter"].map((name) => ({
                        referenceTypeId: "ns=0;i=33", isInverse: false, includeSubtypes: true,
                        targetName: { namespaceIndex: NS, name },
                    })),
                },
            });
            assert.equal(tr.statusCode.value, StatusCodes.Good.value);
            assert.equal(tr.targets[0].targetId.toString(), id("PLC1.Line1.Counter"));

            // Browse with a small page: continuation points and BrowseNext.
            session.requestedMaxReferencesPerNode = 30;
            let page = await session.browse(id("PLC1.Bulk"));
            let total = page.references.length;
            let pages = 1;
            while (page.continuationPoint && page.continuationPoint.length) {
                page = await session.browseNext(page.continuationPoint, false);
                total += page.references.length;
                pages += 1;
            }
            session.requestedMaxReferencesPerNode = 0;
            assert.ok(total >= 200, `Bulk has ${total} references`);
            assert.ok(pages >= 7, `expected several pages, got ${pages}`);
            console.log(`ok  browse Line1, translate Objects/PLC1/Line1/Counter, Bulk in ${pages} pages of <= 30`);

            // Operation limits: 51 nodes in one Read is refused.
            const many = Array.from({ length: 51 }, (_, i) => ({
                nodeId: id(`PLC1.Bulk.Tag${String(i).padStart(3, "0")}`), attributeId: AttributeIds.Value,
            }));
            await assert.rejects(session.read(many), /BadTooManyOperations/);
            const fifty = await session.read(many.slice(0, 50));
            assert.equal(fifty[49].value.value, 49);
            console.log("ok  Read of 51 nodes refused (BadTooManyOperations), 50 nodes read");

            // A subscription sees the counter move.
            const sub = await session.createSubscription2({
                requestedPublishingInterval: 100, requestedLifetimeCount: 100, requestedMaxKeepAliveCount: 10,
                maxNotificationsPerPublish: 100, publishingEnabled: true, priority: 1,
            });
            const item = await sub.monitor({ nodeId: id("PLC1.Line1.Counter"), attributeId: AttributeIds.Value },
                { samplingInterval: 100, queueSize: 10, discardOldest: true }, TimestampsToReturn.Both);
            const seen = [];
            await new Promise((resolve, reject) => {
                const timer = setTimeout(() => reject(new Error(`only ${seen.length} changes in 5 s`)), 5000);
                item.on("changed", (dv) => {
                    seen.push(dv.value.value);
                    if (seen.length >= 5) {
                        clearTimeout(timer);
                        resolve();
                    }
                });
            });
            await sub.terminate();
            assert.ok(seen[4] > seen[0]);
            console.log(`ok  subscription: Counter ${seen.join(", ")}`);
        });
}

async function checkRefusals(url, clientPki) {
    await assert.rejects(
        withSession(url, clientPki, SecurityPolicy.Basic256Sha256, MessageSecurityMode.SignAndEncrypt,
            { ...userIdentity, password: "wrong" }, async () => {}),
        /BadUserAccessDenied|BadIdentityTokenRejected|BadIdentityTokenInvalid/);
    await assert.rejects(
        withSession(url, clientPki, SecurityPolicy.None, MessageSecurityMode.None,
            { ...userIdentity, userName: "nobody" }, async () => {}),
        /BadUserAccessDenied|BadIdentityTokenRejected|BadIdentityTokenInvalid/);
    console.log("ok  wrong password and unknown user refused");
}

// The client's certificate, as node-opcua's client made it under clientPki.
function clientCertificateFile(clientPki) {
    const dir = path.join(clientPki, "own", "certs");
    const file = fs.readdirSync(dir).find((f) => f.endsWith(".pem") && !f.includes("mutex"));
    assert.ok(file, `no client certificate in ${dir}`);
    return path.join(dir, file);
}

async function main() {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "strata-opcua-smoke-"));
    const servers = [];
    const start = async (...args) => {
        const s = await startServer(...args);
        servers.push(s);
        return s;
    };
    try {
        const pki = path.join(tmp, "server-pki");
        const clientPki = path.join(tmp, "client-pki");

        let server = await start(pki);
        const firstMs = server.ms;
        const url = `opc.tcp://127.0.0.1:${server.port}`;
        await checkEveryEndpoint(url, clientPki);
        await checkData(url, clientPki);
        await checkRefusals(url, clientPki);
        assert.equal(server.stdout(), `ready ${server.port}\n`, "stdout must hold the ready line only");
        let stopped = await stopServer(server);
        assert.equal(stopped.code, 0);
        console.log(`ok  SIGTERM: exit 0 after ${stopped.ms} ms`);

        server = await start(pki);
        const secondMs = server.ms;
        await withSession(`opc.tcp://127.0.0.1:${server.port}`, clientPki, SecurityPolicy.None,
            MessageSecurityMode.None, undefined, async (s) => readValue(s, id("PLC1.Line1.Counter")));
        await stopServer(server);

        // Client certificates must be trusted: refused, then accepted once pre-trusted.
        const strictPki = path.join(tmp, "strict-pki");
        server = await start(strictPki, ["--require-trust"]);
        await assert.rejects(
            withSession(`opc.tcp://127.0.0.1:${server.port}`, clientPki, SecurityPolicy.Basic256Sha256,
                MessageSecurityMode.SignAndEncrypt, undefined, async () => {}),
            (err) => {
                console.log(`    refused: ${err.message.split("\n")[0]}`);
                return true;
            });
        const rejected = fs.readdirSync(path.join(strictPki, "server", "rejected"));
        assert.equal(rejected.length, 1, `the server's rejected folder: ${rejected}`);
        await stopServer(server);
        server = await start(strictPki, ["--require-trust", "--trust-client", clientCertificateFile(clientPki)]);
        await withSession(`opc.tcp://127.0.0.1:${server.port}`, clientPki, SecurityPolicy.Basic256Sha256,
            MessageSecurityMode.SignAndEncrypt, undefined, async (s) => readValue(s, id("PLC1.Line1.Counter")));
        await stopServer(server);
        console.log("ok  --require-trust refuses an unknown client certificate, --trust-client admits it");

        console.log(`start-up: ${firstMs} ms with a new PKI (certificate created), ${secondMs} ms on an existing one`);
        console.log("smoke: all checks passed");
    } finally {
        for (const s of servers) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill("SIGKILL");
        fs.rmSync(tmp, { recursive: true, force: true });
    }
}

main().then(
    () => process.exit(0),
    (err) => {
        console.error(`smoke: FAILED: ${err.stack || err}`);
        process.exit(1);
    }
);
