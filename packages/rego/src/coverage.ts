import type { Body, Expr, Module, Term } from './ast.ts';

/** Rows as `opa test --coverage` reports them. */
export type RowRange = { start: { row: number }; end: { row: number } };

export type FileCoverage = {
  covered?: RowRange[];
  not_covered?: RowRange[];
  covered_lines?: number;
  not_covered_lines?: number;
  coverage: number;
};

/** The report of `opa test --coverage`: per file, the rows covered and not, and the percentage. */
export type CoverageReport = {
  files: Record<string, FileCoverage>;
  covered_lines: number;
  not_covered_lines: number;
  coverage: number;
};

/** The rows that can be covered: every rule head and every expression, nested bodies included. */
function coverableRows(module: Module): Set<number> {
  const rows = new Set<number>();
  const term = (t: Term | null | undefined): void => {
    if (!t) return;
    switch (t.type) {
      case 'arraycompr':
      case 'setcompr':
        term(t.head);
        body(t.body);
        return;
      case 'objectcompr':
        term(t.key);
        term(t.value);
        body(t.body);
        return;
      case 'call':
        t.args.forEach(term);
        return;
      case 'ref':
        term(t.head);
        t.path.forEach(term);
        return;
      case 'array':
      case 'set':
        t.items.forEach(term);
        return;
      case 'object':
        for (const [k, v] of t.items) {
          term(k);
          term(v);
        }
        return;
      default:
        return;
    }
  };
  const expr = (e: Expr) => {
    rows.add(e.loc.row);
    if (e.kind === 'term') term(e.term);
    else if (e.kind === 'somein') term(e.domain);
    else if (e.kind === 'every') {
      term(e.domain);
      body(e.body);
    }
  };
  const body = (b: Body) => b.forEach(expr);
  for (const rule of module.rules) {
    rows.add(rule.loc.row);
    body(rule.body);
    term(rule.value);
    for (const el of rule.elses) {
      rows.add(el.loc.row);
      body(el.body);
    }
  }
  return rows;
}

/** Consecutive rows as ranges. */
function ranges(rows: number[]): RowRange[] {
  const out: RowRange[] = [];
  for (const row of rows.sort((a, b) => a - b)) {
    const last = out[out.length - 1];
    if (last && last.end.row + 1 === row) last.end.row = row;
    else out.push({ start: { row }, end: { row } });
  }
  return out;
}

const percent = (covered: number, total: number) =>
  total === 0 ? 0 : Math.round((10000 * covered) / total) / 100;

/**
 * Turns the locations an evaluation covered into OPA's coverage report, for the given modules.
 * @param covered keys `file\u0000row`, as the evaluator's `coverage` option collects them
 */
export function coverageReport(modules: Module[], covered: Set<string>): CoverageReport {
  const files: Record<string, FileCoverage> = {};
  let coveredLines = 0;
  let notCoveredLines = 0;
  for (const module of modules) {
    const rows = [...coverableRows(module)].filter((r) => r > 0);
    const yes = rows.filter((r) => covered.has(`${module.file}\u0000${r}`));
    const no = rows.filter((r) => !covered.has(`${module.file}\u0000${r}`));
    coveredLines += yes.length;
    notCoveredLines += no.length;
    const file: FileCoverage = { coverage: percent(yes.length, rows.length) };
    if (yes.length) {
      file.covered = ranges(yes);
      file.covered_lines = yes.length;
    }
    if (no.length) {
      file.not_covered = ranges(no);
      file.not_covered_lines = no.length;
    }
    files[module.file] = file;
  }
  return {
    files,
    covered_lines: coveredLines,
    not_covered_lines: notCoveredLines,
    coverage: percent(coveredLines, coveredLines + notCoveredLines),
  };
}
