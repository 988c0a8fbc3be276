// C0 controls but tab and newline, DEL, C1 controls (a lone 0x9b is a CSI to many terminals), and the
// bidirectional overrides that reorder what a reader sees (Trojan Source).
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const unsafe = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Text another party wrote (an app's output, a name, a server message) made safe for a terminal: every
 * control character is shown as an escape instead of acting on the screen, so a hostile app cannot erase
 * lines, retitle the window or plant hyperlinks. `--json` output is left as it is: JSON escapes them.
 * @example terminalSafe('\u001b[2Jhi') // '\\x1b[2Jhi'
 */
export function terminalSafe(text: string): string {
  return text.replace(unsafe, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, '0')}`
      : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** Prints a value as JSON (for --json) or as text, with control characters escaped. */
export function emit(json: boolean, value: unknown, text: () => string) {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${terminalSafe(text())}\n`);
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
