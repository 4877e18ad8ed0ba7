/** Progress of a batch job on stderr: a redrawn bar on a terminal, a plain line every few seconds otherwise. */
import type { JobProgress } from '../db/column-job.js';
import { count } from './common.js';

const BAR_WIDTH = 28;
const TTY_REDRAW_MS = 100;
const PLAIN_EVERY_MS = 2_000;

function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Draws progress for one job; `update` is its `onProgress`, `done` ends the bar. */
export class ProgressReporter {
  readonly #label: string;
  readonly #tty: boolean;
  readonly #enabled: boolean;
  #last = 0;
  #drawn = false;
  #latest: JobProgress | undefined;

  constructor(label: string, enabled: boolean) {
    this.#label = label;
    this.#tty = process.stderr.isTTY === true;
    this.#enabled = enabled;
  }

  readonly update = (p: JobProgress): void => {
    if (!this.#enabled) return;
    this.#latest = p;
    const now = performance.now();
    if (now - this.#last < (this.#tty ? TTY_REDRAW_MS : PLAIN_EVERY_MS)) return;
    this.#last = now;
    const rate = p.elapsedMs > 0 ? (p.scanned * 1000) / p.elapsedMs : 0;
    const sweep = p.pass === 'sweep' ? ' (sweep)' : '';
    if (!this.#tty) {
      const of = p.total === undefined ? '' : `/${count(p.total)}`;
      process.stderr.write(
        `${this.#label}${sweep}: ${count(p.scanned)}${of} rows, ${count(p.updated)} written, ${count(p.failed)} failed, ${count(rate)} rows/s\n`,
      );
      return;
    }
    const total = p.total ?? 0;
    const fraction = total > 0 ? Math.min(1, p.scanned / total) : 0;
    const filled = Math.round(fraction * BAR_WIDTH);
    const eta = rate > 0 && total > p.scanned ? ` ETA ${duration(((total - p.scanned) / rate) * 1000)}` : '';
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
    const of = total > 0 ? `/${count(total)}` : '';
    process.stderr.write(
      `\r\x1b[2K${this.#label}${sweep} ${bar} ${count(p.scanned)}${of} rows  ${count(rate)} rows/s${eta}${p.failed > 0 ? `  ${count(p.failed)} failed` : ''}`,
    );
    this.#drawn = true;
  };

  /** Ends the bar's line (the summary follows on its own line). */
  done(): void {
    if (this.#tty && this.#latest !== undefined) {
      // Draw the final counts, which the redraw throttle may have held back.
      this.#last = 0;
      this.update(this.#latest);
      this.#latest = undefined;
    }
    if (this.#drawn) process.stderr.write('\n');
    this.#drawn = false;
  }
}
