// Node.js 18 (Debian 12's nodejs) has Web Crypto only as
// require("node:crypto").webcrypto; node-opcua looks for globalThis.crypto.
"use strict";
if (globalThis.crypto === undefined) {
    Object.defineProperty(globalThis, "crypto", {
        value: require("node:crypto").webcrypto,
        configurable: true,
        writable: true,
    });
}
