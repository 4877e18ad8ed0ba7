/**
 * Finds and loads the native addon for this platform, synchronously (no top-level await, so the
 * package works under `require()` too). Looks, in order, in the package root (a local build or a
 * prebuilt binary shipped with the package), in the platform package `sifredb-<platform>` that npm
 * installs as an optional dependency, and beside the module itself (a bundle with the `.node` file
 * copied next to it). Every failure becomes one `ERR_SIFREDB_BACKEND` error in our own words, kept in
 * `backendError` when the pure-JS backend takes over.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ERROR_CODES, SifreDBError } from '../errors.js';
import { denoGranted } from './env.js';
import type * as Addon from '../../index.js';

export type AddonModule = typeof Addon;

/** napi-rs platform names (`npm/<platform>` packages), most likely first. */
export function platformNames(): string[] {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const libcs = isMusl() ? ['musl', 'gnu'] : ['gnu', 'musl'];
    return libcs.map((libc) => `linux-${arch}-${libc}`);
  }
  if (platform === 'win32') return [`win32-${arch}-msvc`];
  return [`${platform}-${arch}`];
}

function isMusl(): boolean {
  try {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
    return report?.header !== undefined && report.header.glibcVersionRuntime === undefined;
  } catch {
    return false;
  }
}

/** The file of this module; `__filename` in a CommonJS bundle, where `import.meta` is empty. */
function moduleFile(): string | undefined {
  const url = (import.meta as { url?: string }).url;
  if (url !== undefined) return fileURLToPath(url);
  return typeof __filename === 'string' ? __filename : undefined;
}

const isNotFound = (error: unknown): boolean => (error as { code?: unknown } | null)?.code === 'MODULE_NOT_FOUND';

/** Loads the addon or throws `ERR_SIFREDB_BACKEND` saying why not. */
export function loadAddon(): AddonModule {
  if (!denoGranted({ name: 'ffi' })) {
    throw new SifreDBError(
      ERROR_CODES.backend,
      'Deno has not granted --allow-ffi, which loading the native addon needs; run with --allow-ffi (and --allow-read, --allow-env) to use it',
    );
  }
  const file = moduleFile();
  if (file === undefined) {
    throw new SifreDBError(ERROR_CODES.backend, 'cannot locate the native addon: this module has no file location');
  }
  const require = createRequire(file);
  const here = dirname(file);
  const packageRoot = join(here, '..', '..');
  const tried: string[] = [];
  let failure: SifreDBError | undefined;
  const names = platformNames();
  for (const name of names) {
    const binary = `sifredb.${name}.node`;
    for (const candidate of [join(packageRoot, binary), `sifredb-${name}`, join(here, binary)]) {
      try {
        return require(candidate) as AddonModule;
      } catch (error) {
        if (isNotFound(error) && error instanceof Error && error.message.includes(candidate)) {
          tried.push(candidate);
          continue;
        }
        const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
        failure ??= new SifreDBError(ERROR_CODES.backend, `the native addon ${candidate} did not load: ${reason}`, { cause: error });
      }
    }
  }
  if (failure !== undefined) throw failure;
  throw new SifreDBError(
    ERROR_CODES.backend,
    `no native addon for ${names.join(' or ')} was found (looked for ${tried.join(', ')}). ` +
      'If SifreDB is bundled, mark "sifredb" as external, or copy the platform\'s sifredb.<platform>.node next to the bundle.',
  );
}
