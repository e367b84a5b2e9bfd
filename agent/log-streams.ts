/**
 * A Writable that collects lines in memory, for tests and for code that reads
 * back what it logged. Apart from agent/logger.ts, whose every importer would
 * otherwise load node:stream at start (agent/stdio.ts says what that costs).
 */
import { Writable } from 'node:stream';

export class LineCollector extends Writable {
  readonly lines: string[] = [];
  private partial = '';
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const text = this.partial + chunk.toString();
    const parts = text.split('\n');
    this.partial = parts.pop() ?? '';
    for (const p of parts) if (p) this.lines.push(p);
    cb();
  }
  text(): string {
    return this.lines.join('\n') + (this.partial ? `\n${this.partial}` : '');
  }
}

