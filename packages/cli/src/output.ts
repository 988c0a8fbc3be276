/** Prints a value as JSON (for --json) or as text. */
export function emit(json: boolean, value: unknown, text: () => string) {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

/** A plain aligned table; good enough for a terminal, and `--json` is there for scripts. */
export function table(headers: string[], rows: string[][]): string {
  if (rows.length === 0) return '(none)';
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** A progress line on stderr, so stdout stays clean for --json. */
export function progress(message: string) {
  if (process.stderr.isTTY || process.env.MICROAPP_PROGRESS === '1') process.stderr.write(`… ${message}\n`);
}
