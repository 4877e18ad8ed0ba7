/**
 * The backend every API object uses unless given another one. Each entry point registers how to
 * choose it (the Node entry: the native addon, else pure JS; the browser entry: pure JS on @noble),
 * so that modules shared by both never import the native loader. The choice is made once, on first
 * use, synchronously.
 */
import { ERROR_CODES, SifreDBError } from '../errors.js';
import type { Backend } from './types.js';

/** A chosen backend, and why the native addon was not used when pure JS was chosen automatically. */
export interface BackendChoice {
  readonly backend: Backend;
  readonly error: Error | undefined;
}

let chooser: (() => BackendChoice) | undefined;
let choice: BackendChoice | undefined;

/** Registers how the default backend is chosen; the first entry point loaded wins. Internal. */
export function registerBackendChooser(choose: () => BackendChoice): void {
  chooser ??= choose;
}

/** The default backend and, when pure JS was chosen automatically, why the addon was not used. */
export function defaultBackendChoice(): BackendChoice {
  if (choice === undefined) {
    if (chooser === undefined) {
      throw new SifreDBError(ERROR_CODES.backend, 'no SifreDB entry point was loaded: import "sifredb" first');
    }
    choice = chooser();
  }
  return choice;
}

/** The backend every API object uses unless given another one. */
export function getBackend(): Backend {
  return defaultBackendChoice().backend;
}
