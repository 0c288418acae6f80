// SPDX-License-Identifier: Apache-2.0
// Parses .tf files with HashiCorp's HCL parser (@cdktf/hcl2json, compiled to wasm) and checks
// each is formatted as `terraform fmt` would (@cdktf/hcl-tools, hclwrite.Format). One node
// process for every file: starting the wasm is most of the cost.
//   node hcl.js NODE_MODULES FILE...  ->  {"FILE": {"json": {...}, "formatted": true} |
//                                               {"error": "HCL's diagnostic"}, ...}
"use strict";
const fs = require("fs");
const path = require("path");

async function main() {
  const [modules, ...files] = process.argv.slice(2);
  const hcl2json = require(path.join(modules, "@cdktf/hcl2json"));
  const hcltools = require(path.join(modules, "@cdktf/hcl-tools"));
  const out = {};
  for (const f of files) {
    const text = fs.readFileSync(f, "utf8");
    try {
      const json = await hcl2json.parse(path.basename(f), text);
      const formatted = (await hcltools.format(text)) === text;
      out[f] = { json, formatted };
    } catch (e) {
      out[f] = { error: String(e && e.message ? e.message : e) };
    }
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch((e) => {
  process.stderr.write(String(e) + "\n");
  process.exit(2);
});
