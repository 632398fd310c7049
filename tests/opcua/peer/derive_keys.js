// Prints the secure channel keys node-opcua derives for fixed nonces, for
// every policy Strata implements. Run by hand (`node derive_keys.js`); its
// output is the cross-check vector in tests/opcua/test_crypto.cpp, so the
// unit tests do not need node.
"use strict";
require("./compat");
const { computeDerivedKeys, getCryptoFactory, SecurityPolicy } = require("node-opcua-secure-channel");

const clientNonce = Buffer.from(Array.from({ length: 32 }, (_, i) => i));            // 00 01 .. 1f
const serverNonce = Buffer.from(Array.from({ length: 32 }, (_, i) => 0xa0 + i));     // a0 a1 .. bf

console.log(`clientNonce ${clientNonce.toString("hex")}`);
console.log(`serverNonce ${serverNonce.toString("hex")}`);
for (const name of ["Basic256Sha256", "Aes128_Sha256_RsaOaep"]) {
    const keys = computeDerivedKeys(getCryptoFactory(SecurityPolicy[name]), serverNonce, clientNonce);
    for (const [side, k] of [["client", keys.derivedClientKeys], ["server", keys.derivedServerKeys]]) {
        console.log(`${name} ${side} signingKey ${k.signingKey.toString("hex")}`);
        console.log(`${name} ${side} encryptingKey ${k.encryptingKey.toString("hex")}`);
        console.log(`${name} ${side} iv ${k.initializationVector.toString("hex")}`);
    }
}
