/**
 * Reads SifreDB's environment variables in any runtime: `undefined` where there is no `process`
 * (browsers, edge runtimes) and, under Deno, when `--allow-env` was not granted for the variable,
 * so that choosing a backend never needs a permission or shows a prompt. Internal.
 */
interface DenoPermissions {
  permissions?: { querySync?: (descriptor: { name: string; variable?: string }) => { state: string } };
}

/** Whether Deno has granted a permission, without prompting; `true` outside Deno. */
export function denoGranted(descriptor: { name: string; variable?: string }): boolean {
  const deno = (globalThis as { Deno?: DenoPermissions }).Deno;
  if (deno?.permissions?.querySync === undefined) return true;
  try {
    return deno.permissions.querySync(descriptor).state === 'granted';
  } catch {
    return false;
  }
}

/** The variable's value, or `undefined` when unset or unreadable here. */
export function readEnv(name: string): string | undefined {
  if (!denoGranted({ name: 'env', variable: name })) return undefined;
  try {
    return (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name];
  } catch {
    return undefined;
  }
}
