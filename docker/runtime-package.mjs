// Rewrites package.json for the image's production install: every package the compiled app
// (build/demo) and worker bin (dist) require at run time moves from devDependencies to
// dependencies, so `npm ci --omit=dev` installs exactly those (the library declares express,
// mongoose, bullmq and ioredis as peers and the example's helmet, bcrypt… as dev tools).
// Found by reading the compiled files' require() calls, so a new import needs no edit here.
// Usage (in the image's build stage, after `npm run build`): node docker/runtime-package.mjs
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';

const builtins = new Set(builtinModules);
const required = new Set();
for (const dir of ['build/demo', 'dist']) {
  for (const file of readdirSync(dir, { recursive: true })) {
    if (!String(file).endsWith('.js')) continue;
    const text = readFileSync(join(dir, String(file)), 'utf8');
    for (const [, specifier] of text.matchAll(/require\(["']([^"'.][^"']*)["']\)/g)) {
      if (specifier.startsWith('node:')) continue;
      const parts = specifier.split('/');
      const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
      if (!builtins.has(name)) required.add(name);
    }
  }
}
const manifest = JSON.parse(readFileSync('package.json', 'utf8'));
const missing = [];
for (const name of [...required].sort()) {
  // The worker bin requires the package itself by name (refresh-rotation/worker…): Node resolves
  // that to this package's own dist/ through its `exports`, no install needed.
  if (name === manifest.name) continue;
  if (manifest.dependencies?.[name]) continue;
  const range = manifest.devDependencies?.[name];
  if (!range) {
    missing.push(name);
    continue;
  }
  manifest.dependencies[name] = range;
  delete manifest.devDependencies[name];
}
if (missing.length > 0) {
  console.error(
    `runtime-package: required at run time but not in package.json: ${missing.join(', ')}`,
  );
  process.exit(1);
}
writeFileSync('package.json', `${JSON.stringify(manifest, null, 2)}\n`);
console.log(
  `runtime-package: production dependencies: ${Object.keys(manifest.dependencies).sort().join(', ')}`,
);
