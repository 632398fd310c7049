// The OPC UA server Strata's OPC UA tests connect to: a node-opcua server
// on 127.0.0.1 with a small PLC-like address space.
//
//   node server.js --pki DIR [--port N] [--user NAME --password PW]
//                  [--require-trust] [--trust-client FILE] [--no-anonymous]
//                  [--load N]
//
//   --port N           TCP port; 0 (the default) picks a free one.
//   --pki DIR          the server's PKI (own certificate and key, trusted and
//                      rejected client certificates); created offline on
//                      first start. A DER copy of the server's certificate is
//                      written to DIR/server_certificate.der for the tests.
//   --user/--password  a UserName identity (default from STRATA_OPCUA_USER
//                      and STRATA_OPCUA_PASSWORD; none when unset).
//   --require-trust    refuse client certificates that are not trusted
//                      (default: every client certificate is accepted).
//   --trust-client F   trust this client certificate (DER or PEM) before
//                      listening; may be repeated.
//   --no-anonymous     refuse anonymous sessions.
//   --load N           N more variables, Objects/PLC1/Load/Tag00000 ..., each
//                      changing once a second (ingestion benchmarks).
//
// Endpoints: SecurityPolicy None (mode None), Basic256Sha256 and
// Aes128_Sha256_RsaOaep in Sign and SignAndEncrypt. Operation limits are
// kept small (50 nodes per Read, Write, Browse and TranslateBrowsePaths, 100
// monitored items per call) so that clients have to batch.
//
// Address space, namespace "urn:strata:test-plc" (string NodeIds):
//   Objects/PLC1/Line1/  Counter (UInt32, +1 every 100 ms), Temperature
//                        (Double, changes every 100 ms), Running (Boolean),
//                        Recipe (String), Speeds (Double[4], change every
//                        second), Setpoint (Double, writable),
//                        Axis/{Position, Enabled}
//   Objects/PLC1/Line2/  Counter (UInt32), Status (Int32), Broken (Double with
//                        status BadSensorFailure)
//   Objects/PLC1/Types/  Int16, Int64, Float, DateTime, ByteString, Matrix (Double 2x3)
//   Objects/PLC1/Bulk/   Tag000 .. Tag199 (UInt32 = index), for browse
//                        continuation points and batched reads
//   Objects/PLC1/Load/   with --load N: Tag00000 .. (UInt32, all +1 each second)
// The NodeId of each is "PLC1.<path with dots>", e.g. ns=<i>;s=PLC1.Line1.Counter.
//
// Prints exactly one line on stdout, `ready <port>`, once it listens
// (diagnostics go to stderr), and exits 0 on SIGTERM or SIGINT.
"use strict";
require("./compat");

// stdout carries the ready line only: node-opcua's own messages (some
// written with console.log) go to stderr.
const writeStdout = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr);

const fs = require("node:fs");
const path = require("node:path");
const {
    OPCUAServer,
    OPCUACertificateManager,
    SecurityPolicy,
    MessageSecurityMode,
    DataType,
    Variant,
    VariantArrayType,
    StatusCodes,
} = require("node-opcua");

function parseArgs(argv) {
    const options = {
        port: 0,
        pki: null,
        user: process.env.STRATA_OPCUA_USER || null,
        password: process.env.STRATA_OPCUA_PASSWORD || null,
        requireTrust: false,
        trustClient: [],
        anonymous: true,
        load: 0,
    };
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        const value = () => {
            if (i + 1 >= argv.length) throw new Error(`${arg} needs a value`);
            return argv[++i];
        };
        switch (arg) {
            case "--port": options.port = Number.parseInt(value(), 10); break;
            case "--pki": options.pki = path.resolve(value()); break;
            case "--user": options.user = value(); break;
            case "--password": options.password = value(); break;
            case "--require-trust": options.requireTrust = true; break;
            case "--trust-client": options.trustClient.push(value()); break;
            case "--no-anonymous": options.anonymous = false; break;
            case "--load": options.load = Number.parseInt(value(), 10); break;
            default: throw new Error(`unknown argument ${arg}`);
        }
    }
    if (!options.pki) throw new Error("--pki DIR is required");
    if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535)
        throw new Error("--port must be 0..65535");
    if (!Number.isInteger(options.load) || options.load < 0 || options.load > 1000000)
        throw new Error("--load must be 0..1000000");
    if (!!options.user !== !!options.password) throw new Error("--user and --password go together");
    return options;
}

// DER bytes of a certificate file in DER or PEM.
function readCertificate(file) {
    const data = fs.readFileSync(file);
    const text = data.toString("latin1");
    const m = text.match(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/);
    return m ? Buffer.from(m[1].replace(/\s+/g, ""), "base64") : data;
}

function addVariable(ns, parent, name, dataType, value, extra = {}) {
    return ns.addVariable({
        componentOf: parent,
        browseName: name,
        nodeId: `s=${parent.nodeId.value}.${name}`,
        dataType,
        value: { dataType: DataType[dataType], value, ...extra.variant },
        accessLevel: extra.writable ? "CurrentRead | CurrentWrite" : "CurrentRead",
        userAccessLevel: extra.writable ? "CurrentRead | CurrentWrite" : "CurrentRead",
        ...(extra.valueRank !== undefined ? { valueRank: extra.valueRank, arrayDimensions: extra.arrayDimensions } : {}),
    });
}

function addObject(ns, parent, name, organizedBy = false) {
    const id = parent.nodeId.namespace === 0 ? name : `${parent.nodeId.value}.${name}`;
    return ns.addObject({
        [organizedBy ? "organizedBy" : "componentOf"]: parent,
        browseName: name,
        nodeId: `s=${id}`,
    });
}

function setValue(variable, dataType, value, arrayType) {
    variable.setValueFromSource(
        new Variant({ dataType, value, ...(arrayType ? { arrayType } : {}) }),
        StatusCodes.Good,
        new Date()
    );
}

function buildAddressSpace(server, load) {
    const addressSpace = server.engine.addressSpace;
    const ns = addressSpace.registerNamespace("urn:strata:test-plc");
    const plc1 = addObject(ns, addressSpace.rootFolder.objects, "PLC1", true);

    const line1 = addObject(ns, plc1, "Line1");
    const counter = addVariable(ns, line1, "Counter", "UInt32", 0);
    const temperature = addVariable(ns, line1, "Temperature", "Double", 20.0);
    addVariable(ns, line1, "Running", "Boolean", true, { writable: true });
    addVariable(ns, line1, "Recipe", "String", "R-100", { writable: true });
    const speeds = addVariable(ns, line1, "Speeds", "Double", [1.5, 2.5, 3.5, 4.5], {
        variant: { arrayType: VariantArrayType.Array },
        valueRank: 1,
        arrayDimensions: [4],
    });
    addVariable(ns, line1, "Setpoint", "Double", 42.0, { writable: true });
    const axis = addObject(ns, line1, "Axis");
    addVariable(ns, axis, "Position", "Double", 0.0);
    addVariable(ns, axis, "Enabled", "Boolean", false, { writable: true });

    const line2 = addObject(ns, plc1, "Line2");
    addVariable(ns, line2, "Counter", "UInt32", 7);
    addVariable(ns, line2, "Status", "Int32", -1);
    const broken = addVariable(ns, line2, "Broken", "Double", 0.0);
    broken.setValueFromSource(new Variant({ dataType: DataType.Double, value: -1 }), StatusCodes.BadSensorFailure,
        new Date());

    const types = addObject(ns, plc1, "Types");
    addVariable(ns, types, "Int16", "Int16", -12345);
    // node-opcua's [high, low] form: 0x123456789ab = 1250999896491.
    addVariable(ns, types, "Int64", "Int64", [0x123, 0x456789ab], { variant: { arrayType: VariantArrayType.Scalar } });
    addVariable(ns, types, "Float", "Float", 1.5);
    addVariable(ns, types, "DateTime", "DateTime", new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)));
    addVariable(ns, types, "ByteString", "ByteString", Buffer.from([0, 1, 2, 0xfe, 0xff]));
    addVariable(ns, types, "Matrix", "Double", new Float64Array([1, 2, 3, 4, 5, 6]), {
        variant: { arrayType: VariantArrayType.Matrix, dimensions: [2, 3] },
        valueRank: 2,
        arrayDimensions: [2, 3],
    });

    const bulk = addObject(ns, plc1, "Bulk");
    for (let i = 0; i < 200; i++) addVariable(ns, bulk, `Tag${String(i).padStart(3, "0")}`, "UInt32", i);

    const loadTags = [];
    if (load > 0) {
        const loadFolder = addObject(ns, plc1, "Load");
        for (let i = 0; i < load; i++)
            loadTags.push(addVariable(ns, loadFolder, `Tag${String(i).padStart(5, "0")}`, "UInt32", 0));
    }

    let count = 0;
    let second = 0;
    const start = Date.now();
    const fast = setInterval(() => {
        count = (count + 1) >>> 0;
        setValue(counter, DataType.UInt32, count);
        const t = (Date.now() - start) / 1000;
        setValue(temperature, DataType.Double, 20 + 5 * Math.sin(t / 3));
    }, 100);
    const slow = setInterval(() => {
        second += 1;
        setValue(speeds, DataType.Double, [1.5, 2.5, 3.5, 4.5].map((v) => v + second), VariantArrayType.Array);
        for (const tag of loadTags) setValue(tag, DataType.UInt32, second);
    }, 1000);
    return () => {
        clearInterval(fast);
        clearInterval(slow);
    };
}

async function main() {
    const options = parseArgs(process.argv.slice(2));
    fs.mkdirSync(options.pki, { recursive: true });
    const started = Date.now();

    const serverCertificateManager = new OPCUACertificateManager({
        rootFolder: path.join(options.pki, "server"),
        automaticallyAcceptUnknownCertificate: !options.requireTrust,
    });
    const userCertificateManager = new OPCUACertificateManager({
        rootFolder: path.join(options.pki, "user"),
        automaticallyAcceptUnknownCertificate: true,
    });
    const users = options.user ? { [options.user]: options.password } : {};
    const server = new OPCUAServer({
        port: options.port,
        host: "127.0.0.1",
        hostname: "127.0.0.1",
        serverCertificateManager,
        userCertificateManager,
        serverInfo: {
            applicationUri: "urn:strata:test-plc-server",
            productUri: "urn:strata:test-plc-server",
            applicationName: { text: "Strata test PLC" },
        },
        securityPolicies: [SecurityPolicy.None, SecurityPolicy.Basic256Sha256, SecurityPolicy.Aes128_Sha256_RsaOaep],
        securityModes: [MessageSecurityMode.None, MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt],
        allowAnonymous: options.anonymous,
        userManager: {
            isValidUser: (userName, password) => Object.hasOwn(users, userName) && users[userName] === password,
        },
        maxConnectionsPerEndpoint: 100,
        serverCapabilities: {
            maxSessions: 100,
            operationLimits: {
                maxNodesPerRead: 50,
                maxNodesPerWrite: 50,
                maxNodesPerBrowse: 50,
                maxNodesPerTranslateBrowsePathsToNodeIds: 50,
                maxMonitoredItemsPerCall: 100,
            },
        },
        disableDiscovery: true,
    });

    await server.initialize();
    for (const file of options.trustClient) await serverCertificateManager.trustCertificate(readCertificate(file));
    fs.writeFileSync(path.join(options.pki, "server_certificate.der"), readCertificate(server.certificateFile));
    const stopUpdates = buildAddressSpace(server, options.load);

    await server.start();
    const port = server.endpoints[0].port;
    console.error(`server: listening on 127.0.0.1:${port} after ${Date.now() - started} ms`);
    for (const e of server.endpoints[0].endpointDescriptions()) {
        const policy = e.securityPolicyUri.split("#")[1];
        console.error(`server: endpoint ${e.endpointUrl} ${policy} ${MessageSecurityMode[e.securityMode]}`);
    }
    writeStdout(`ready ${port}\n`);

    let stopping = false;
    const stop = async (signal) => {
        if (stopping) return;
        stopping = true;
        console.error(`server: ${signal}, shutting down`);
        // A shutdown that hangs must not keep the test waiting.
        setTimeout(() => process.exit(0), 3000).unref();
        stopUpdates();
        await server.shutdown(0);
        process.exit(0);
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
}

main().catch((err) => {
    console.error(`server: ${err.stack || err}`);
    process.exit(1);
});
