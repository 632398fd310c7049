// A Sparkplug B edge node for Strata's tests, on Eclipse Tahu's
// sparkplug-client: it connects to the broker given with --url (127.0.0.1
// only), births itself and its devices, publishes data by alias, rebirths
// on an NCMD "Node Control/Rebirth", and reports what it receives.
//
//   node edge_node.js --url mqtt://127.0.0.1:PORT --group G --edge E
//                     [--devices press-7,press-8] [--bdseq N] [--client-id ID]
//                     [--username U --password P]
//
// Its will (NDEATH) carries bdSeq 0: Tahu's client makes it when it is
// constructed; --bdseq sets the bdSeq of its births and of the NDEATH it
// publishes on "stop".
//
// Reads commands from stdin, one JSON object a line:
//   {"op": "data", "device": "press-7", "metrics": {"Temperature": 21.5}}
//   {"op": "data", "metrics": {"Uptime": 5}}          (node data, NDATA)
//   {"op": "ddeath", "device": "press-7"}
//   {"op": "stop"}          NDEATH with its bdSeq, then disconnect
// Writes events to stdout, one JSON object a line:
//   {"event": "born"}       NBIRTH and every DBIRTH taken by the broker
//   {"event": "rebirth"}    born again on a Rebirth command
//   {"event": "dcmd", "device": ..., "metrics": [{"name", "alias", "type", "value"}]}
//   {"event": "ncmd", "metrics": [...]}
//   {"event": "sent", "op": ...}
"use strict";

const readline = require("node:readline");
const sparkplug = require("sparkplug-client");

function arg(name, fallback) {
    const i = process.argv.indexOf("--" + name);
    return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const url = arg("url");
if (!url || !/^mqtt:\/\/127\.0\.0\.1:\d+$/.test(url)) {
    console.error("--url mqtt://127.0.0.1:PORT is required (the tests stay on loopback)");
    process.exit(2);
}
const group = arg("group", "dresden");
const edge = arg("edge", "line-2");
const devices = arg("devices", "press-7,press-8").split(",").filter((d) => d);
const bdSeq = Number(arg("bdseq", "0"));

// Every metric with its alias and type. Aliases are unique across the
// node and its devices (Sparkplug 3.0).
const nodeMetrics = [
    { name: "Node Control/Rebirth", type: "Boolean", value: false, alias: 1 },
    { name: "Uptime", type: "UInt64", value: 0, alias: 2 },
];
const deviceMetrics = [
    { name: "Temperature", type: "Double", value: 20.5 },
    { name: "Pressure", type: "Float", value: 1.5 },
    { name: "Running", type: "Boolean", value: true },
    { name: "Count", type: "Int32", value: -3 },
    { name: "State", type: "String", value: "running" },
    { name: "Setpoint", type: "Double", value: 50 },
    { name: "Mode", type: "Int8", value: 1 },
];
const aliases = {};  // device -> name -> {alias, type}
devices.forEach((d, i) => {
    aliases[d] = {};
    deviceMetrics.forEach((m, j) => {
        aliases[d][m.name] = { alias: 100 * (i + 1) + j, type: m.type };
    });
});
const byAlias = {};  // alias -> name, for commands
for (const d of devices) for (const [name, a] of Object.entries(aliases[d])) byAlias[a.alias] = name;
for (const m of nodeMetrics) byAlias[m.alias] = m.name;

const client = sparkplug.newClient({
    serverUrl: url,
    // Anonymous unless given (null: the CONNECT carries no user name).
    username: arg("username", null),
    password: arg("password", null),
    groupId: group,
    edgeNode: edge,
    clientId: arg("client-id", "edge-" + group + "-" + edge + "-" + process.pid),
    publishDeath: true,
    keepalive: 30,
    mqttOptions: { reconnectPeriod: 500 },
});
client.bdSeq = bdSeq;

function emit(e) {
    process.stdout.write(JSON.stringify(e) + "\n");
}

function plain(v) {
    return v !== null && typeof v === "object" && typeof v.toNumber === "function" ? v.toNumber() : v;
}

function birth() {
    client.publishNodeBirth({ timestamp: Date.now(), metrics: nodeMetrics.map((m) => ({ ...m })) });
    for (const d of devices) {
        client.publishDeviceBirth(d, {
            timestamp: Date.now(),
            metrics: deviceMetrics.map((m) => ({ ...m, alias: aliases[d][m.name].alias })),
        });
    }
}

// "born" is told once the broker has taken the births: the SUBACK of a
// subscription made after them (the broker handles one connection's
// packets in order; mqtt.js may hold packets back right after CONNACK).
// The filter is the NCMD one Tahu's client subscribed to already.
function told(event) {
    client.subscribeTopic("spBv1.0/" + group + "/NCMD/" + edge + "/#", { qos: 0 }, () => emit({ event }));
}

let births = 0;
client.on("birth", () => {
    birth();
    told(births++ === 0 ? "born" : "rebirth");
});

function metricsOf(payload) {
    return (payload.metrics || []).map((m) => ({
        name: m.name !== undefined ? m.name : byAlias[plain(m.alias)],
        alias: m.alias !== undefined ? plain(m.alias) : null,
        type: m.type,
        value: plain(m.value),
    }));
}

client.on("ncmd", (payload) => {
    const metrics = metricsOf(payload);
    emit({ event: "ncmd", metrics });
    if (metrics.some((m) => m.name === "Node Control/Rebirth" && m.value === true)) {
        birth();
        told("rebirth");
    }
});
client.on("dcmd", (device, payload) => emit({ event: "dcmd", device, metrics: metricsOf(payload) }));
client.on("error", (e) => emit({ event: "error", message: String(e) }));

const input = readline.createInterface({ input: process.stdin });
input.on("line", (line) => {
    let cmd;
    try {
        cmd = JSON.parse(line);
    } catch (e) {
        emit({ event: "error", message: "not JSON: " + line });
        return;
    }
    if (cmd.op === "data") {
        const table = cmd.device ? aliases[cmd.device] : Object.fromEntries(nodeMetrics.map((m) => [m.name, m]));
        const metrics = Object.entries(cmd.metrics).map(([name, value]) => ({
            alias: table[name].alias,
            type: table[name].type,
            value,
        }));
        const payload = { timestamp: Date.now(), metrics };
        if (cmd.device) client.publishDeviceData(cmd.device, payload);
        else client.publishNodeData(payload);
    } else if (cmd.op === "ddeath") {
        client.publishDeviceDeath(cmd.device, { timestamp: Date.now() });
    } else if (cmd.op === "stop") {
        client.stop();
        setTimeout(() => process.exit(0), 200);
    }
    emit({ event: "sent", op: cmd.op });
});
input.on("close", () => process.exit(0));
