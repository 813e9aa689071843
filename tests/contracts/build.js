// Compiles Token.sol with solc-js (npm install solc@0.8.28) into Token.bin (creation code, hex).
// Usage: NODE_PATH=<dir with node_modules> node tests/contracts/build.js
const fs = require("fs");
const path = require("path");
const solc = require("solc");
const src = fs.readFileSync(path.join(__dirname, "Token.sol"), "utf8");
const input = {
  language: "Solidity",
  sources: { "Token.sol": { content: src } },
  settings: { optimizer: { enabled: true, runs: 200 }, evmVersion: "cancun", outputSelection: { "*": { "*": ["evm.bytecode.object"] } } },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
for (const e of out.errors || []) {
  if (e.severity === "error") { console.error(e.formattedMessage); process.exit(1); }
}
fs.writeFileSync(path.join(__dirname, "Token.bin"), out.contracts["Token.sol"].Token.evm.bytecode.object + "\n");
console.log("Token.bin written with solc", solc.version());
