// Cargo's runner for wasm32-wasip1 test binaries: runs one in Node's V8
// (scripts/wasm-vectors.sh). The filter's crate links proxy-wasm's host
// imports (module "env"); a test never calls them, so each is a stub that
// fails loudly if one ever is. That crate's proxy_wasm::main! also
// exports `_initialize`, the entry of a proxy-wasm module, which Node's WASI
// refuses beside a command's `_start`: it is hidden from WASI.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import { argv, env, exit } from 'node:process';

const [file, ...args] = argv.slice(2);
const wasi = new WASI({ version: 'preview1', args: [file, ...args], env, returnOnExit: true });
const module = await WebAssembly.compile(await readFile(file));
const imports = wasi.getImportObject();
for (const { module: from, name, kind } of WebAssembly.Module.imports(module)) {
  if (kind !== 'function' || imports[from]?.[name]) continue;
  imports[from] ??= {};
  imports[from][name] = () => {
    throw new Error(`host function ${from}.${name} called outside a proxy`);
  };
}
const instance = await WebAssembly.instantiate(module, imports);
const { _initialize, ...exports } = instance.exports;
exit(wasi.start({ exports }));
