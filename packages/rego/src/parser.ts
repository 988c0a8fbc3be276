import type { Body, Expr, Import, Module, Rule, Term, With } from './ast.ts';
import { type Location, RegoError } from './errors.ts';
import { lex, type Token } from './lexer.ts';

export type ParseOptions = { regoVersion?: 'v0' | 'v1' };

const keywordsAll = ['if', 'contains', 'in', 'every'];
const reserved = ['not', 'with', 'some', 'package', 'import', 'default', 'else', 'as'];

/** Parses one module. Without an explicit version, v1 is tried first and v0 second, as the module's syntax decides. */
export function parseModule(source: string, file: string, options: ParseOptions = {}): Module {
  if (options.regoVersion) return new Parser(source, file, options.regoVersion).module();
  try {
    return new Parser(source, file, 'v1').module();
  } catch (v1Error) {
    try {
      return new Parser(source, file, 'v0').module();
    } catch {
      throw v1Error;
    }
  }
}

/** Parses a query: expressions separated by `;` or newlines. */
export function parseQuery(source: string, file = 'query'): Body {
  return new Parser(source, file, 'v1').query();
}

class Parser {
  private tokens: Token[];
  private pos = 0;
  private keywords: Set<string>;
  private nlSignificant: boolean[] = [true];
  private mod!: Module;
  private readonly source: string;
  private readonly file: string;
  private readonly version: 'v0' | 'v1';

  constructor(source: string, file: string, version: 'v0' | 'v1') {
    this.source = source;
    this.file = file;
    this.version = version;
    this.tokens = lex(source, file);
    this.keywords = new Set(version === 'v1' ? keywordsAll : []);
  }

  // ---- token helpers
  private get tok(): Token {
    return this.tokens[this.pos]!;
  }
  private peek(n = 1): Token {
    return this.tokens[Math.min(this.pos + n, this.tokens.length - 1)]!;
  }
  private next(): Token {
    const t = this.tok;
    if (t.kind !== 'eof') this.pos++;
    return t;
  }
  private isOp(text: string, t = this.tok) {
    return t.kind === 'op' && t.text === text;
  }
  private isKw(word: string, t = this.tok) {
    return t.kind === 'ident' && t.text === word && this.keywords.has(word);
  }
  private isIdent(word: string, t = this.tok) {
    return t.kind === 'ident' && t.text === word;
  }
  /** A keyword used as a keyword, not as the head of a reference like `default.foo`. */
  private isKeywordUse(word: string) {
    return (
      this.isIdent(word) &&
      !this.isOp('.', this.peek()) &&
      !(this.isOp('[', this.peek()) && !this.peek().nl && word !== 'some')
    );
  }
  private fail(message: string, at: Location = this.tok.loc): never {
    throw new RegoError('rego_parse_error', message, at, this.source);
  }
  private expectOp(text: string): Token {
    if (!this.isOp(text)) this.fail(`expected ${text} but found ${this.describe(this.tok)}`);
    return this.next();
  }
  private describe(t: Token) {
    return t.kind === 'eof' ? 'end of input' : JSON.stringify(t.text);
  }
  private get nl() {
    return this.nlSignificant[this.nlSignificant.length - 1]!;
  }
  private nested<T>(significant: boolean, fn: () => T): T {
    this.nlSignificant.push(significant);
    try {
      return fn();
    } finally {
      this.nlSignificant.pop();
    }
  }
  /** True when the current token starts a new line inside a body, ending the expression before it. */
  private lineBreak() {
    return this.nl && this.tok.nl;
  }

  // ---- module
  module(): Module {
    this.mod = {
      file: this.file,
      source: this.source,
      pkg: [],
      imports: [],
      rules: [],
      regoVersion: this.version,
    };
    if (!this.isIdent('package')) this.fail('package expected');
    this.next();
    this.mod.pkg = this.packagePath();
    while (this.isKeywordUse('import')) this.mod.imports.push(this.importDecl());
    while (this.tok.kind !== 'eof') {
      if (this.isKeywordUse('import')) this.fail('imports must come before rules');
      if (this.isKeywordUse('package')) this.fail('unexpected package');
      this.mod.rules.push(...this.rule());
    }
    return this.mod;
  }

  private packagePath(): string[] {
    const start = this.tok;
    const path: string[] = [];
    if (this.tok.kind !== 'ident') this.fail('package name expected');
    path.push(this.next().text);
    for (;;) {
      if (this.isOp('.') && !this.tok.nl) {
        this.next();
        if (this.tok.kind !== 'ident') this.fail('package name expected');
        path.push(this.next().text);
      } else if (this.isOp('[') && !this.tok.nl) {
        this.next();
        const t = this.next();
        if (t.kind !== 'string') this.fail('package path segments must be strings', t.loc);
        path.push(t.value!);
        this.expectOp(']');
      } else break;
    }
    if (path[0] === 'data' && path.length > 1) path.shift();
    else if (path[0] === 'data') this.fail('package name must not be data', start.loc);
    return path;
  }

  private importDecl(): Import {
    const at = this.next().loc;
    const path = this.term();
    const parts = refStrings(path);
    if (!parts || !['data', 'input', 'future', 'rego'].includes(parts[0]!))
      this.fail('invalid import path: must begin with input, data, future or rego', at);
    let alias: string | null = null;
    if (this.isIdent('as')) {
      this.next();
      if (this.tok.kind !== 'ident') this.fail('alias expected');
      alias = this.next().text;
    }
    if (parts![0] === 'future') {
      if (parts![1] !== 'keywords') this.fail('invalid import: future imports must be future.keywords', at);
      if (parts!.length === 2) for (const k of keywordsAll) this.keywords.add(k);
      else if (keywordsAll.includes(parts![2]!)) this.keywords.add(parts![2]!);
      else this.fail(`unexpected keyword ${parts![2]}`, at);
    }
    if (parts![0] === 'rego') {
      if (parts!.join('.') !== 'rego.v1') this.fail('invalid import: only rego.v1 is supported', at);
      for (const k of keywordsAll) this.keywords.add(k);
    }
    return { path, alias, loc: at };
  }

  private rule(): Rule[] {
    const start = this.tok;
    const isDefault = this.isKeywordUse('default');
    if (isDefault) this.next();
    if (this.tok.kind !== 'ident') this.fail(`unexpected ${this.describe(this.tok)}: expected a rule`);
    const ref = this.headRef();
    let args: Term[] | null = null;
    if (this.isOp('(') && !this.tok.nl) {
      this.next();
      args = this.nested(false, () => this.termList(')'));
    }
    const rule: Rule = {
      ref,
      args,
      key: null,
      value: null,
      assign: false,
      kind: args ? 'function' : 'complete',
      isDefault,
      body: [],
      elses: [],
      loc: start.loc,
      module: this.mod,
    };
    if (isDefault) {
      if (!this.isOp(':=') && !this.isOp('=')) this.fail('default rules must have a value (default x := v)');
      rule.assign = this.next().text === ':=';
      rule.value = this.exprTerm();
      return [rule];
    }
    if (this.isKw('contains')) {
      if (args) this.fail('functions cannot use contains');
      this.next();
      rule.kind = 'multi';
      rule.key = this.exprTerm();
    } else if (this.isOp(':=') || this.isOp('=')) {
      rule.assign = this.next().text === ':=';
      rule.value = this.exprTerm();
    }
    const hasBody = this.ruleBody(rule);
    if (!hasBody && !rule.value && !rule.key) {
      // `p[x]` alone in v0 is a partial set rule with an empty body? OPA requires a body or value.
      if (this.version === 'v0' && ref.length > 1 && ref[ref.length - 1]!.type !== 'string') {
        rule.kind = 'multi';
        rule.key = ref.pop()!;
      } else if (this.version === 'v1' && !args) {
        this.fail('rule must have a value or a body', start.loc);
      }
    }
    if (this.version === 'v0' && !rule.value && !rule.key && !args && ref.length > 1) {
      const last = ref[ref.length - 1]!;
      if (last.type !== 'string' && hasBody) {
        // v0 `p[x] { ... }`: a partial set.
        rule.kind = 'multi';
        rule.key = ref.pop()!;
      }
    }
    if (!rule.value && !rule.key) rule.value = { type: 'boolean', value: true, loc: start.loc };
    while (this.isKeywordUse('else')) {
      if (rule.kind === 'multi') this.fail('else keyword cannot be used on multi-value rules');
      const at = this.next().loc;
      let value: Term | null = null;
      if (this.isOp(':=') || this.isOp('=')) {
        this.next();
        value = this.exprTerm();
      }
      const holder = { body: [] as Body };
      if (!this.ruleBodyInto(holder)) {
        if (!value) this.fail('else must have a value or a body', at);
        holder.body = [
          {
            kind: 'term',
            term: { type: 'boolean', value: true, loc: at },
            negated: false,
            with: [],
            loc: at,
          },
        ];
      }
      rule.elses.push({
        value: value ?? { type: 'boolean', value: true, loc: at },
        body: holder.body,
        loc: at,
      });
    }
    const extra: Rule[] = [];
    // v0 allows several bodies for one head: `p { a } { b }` means p if a, or p if b.
    while (this.isOp('{') && !this.tok.nl && this.version === 'v0') {
      const holder = { body: [] as Body };
      this.ruleBodyInto(holder);
      extra.push({ ...rule, body: holder.body, elses: [] });
    }
    return [rule, ...extra];
  }

  private ruleBody(rule: Rule): boolean {
    return this.ruleBodyInto(rule);
  }

  private ruleBodyInto(holder: { body: Body }): boolean {
    if (this.isKw('if')) {
      this.next();
      if (this.isOp('{')) {
        holder.body = this.braceBody();
      } else {
        holder.body = [this.expr()];
      }
      return true;
    }
    if (this.isOp('{') && !this.tok.nl) {
      if (this.version === 'v1' || this.keywords.has('if')) {
        if (this.version === 'v1') this.fail('`if` keyword is required before rule body');
      }
      holder.body = this.braceBody();
      return true;
    }
    return false;
  }

  private braceBody(): Body {
    const open = this.expectOp('{');
    const body = this.nested(true, () => this.bodyUntil('}'));
    this.expectOp('}');
    if (body.length === 0) this.fail('found empty body', open.loc);
    return body;
  }

  /** The head reference: `p`, `p.q`, `p[x]`, `p["a"].b`. */
  private headRef(): Term[] {
    const first = this.next();
    const ref: Term[] = [{ type: 'string', value: first.text, loc: first.loc }];
    for (;;) {
      if (this.isOp('.') && !this.tok.nl) {
        this.next();
        const t = this.next();
        if (t.kind !== 'ident') this.fail('expected a name after .', t.loc);
        ref.push({ type: 'string', value: t.text, loc: t.loc });
      } else if (this.isOp('[') && !this.tok.nl) {
        this.next();
        ref.push(this.nested(false, () => this.exprTerm()));
        this.expectOp(']');
      } else break;
    }
    return ref;
  }

  // ---- queries and bodies
  query(): Body {
    const body = this.bodyUntil(null);
    if (this.tok.kind !== 'eof') this.fail(`unexpected ${this.describe(this.tok)}`);
    if (body.length === 0) this.fail('empty query');
    return body;
  }

  private atEnd(close: string | null): boolean {
    return this.tok.kind === 'eof' || (close !== null && this.isOp(close));
  }

  private bodyUntil(close: string | null): Body {
    const body: Body = [];
    for (;;) {
      while (this.isOp(';')) this.next();
      if (this.atEnd(close)) break;
      body.push(this.expr());
      if (this.isOp(';')) continue;
      if (this.atEnd(close)) break;
      if (!this.tok.nl)
        this.fail(`unexpected ${this.describe(this.tok)}: expressions must be separated by ; or a new line`);
    }
    return body;
  }

  private expr(): Expr {
    const start = this.tok;
    let negated = false;
    if (
      this.isIdent('not') &&
      !this.isOp('(', this.peek()) &&
      !this.isOp('.', this.peek()) &&
      !this.isOp('=', this.peek()) &&
      !this.isOp(':=', this.peek())
    ) {
      this.next();
      negated = true;
    }
    let e: Expr;
    if (this.isIdent('some') && !negated && !this.isOp('.', this.peek()) && !this.isOp('[', this.peek())) {
      e = this.someExpr();
    } else if (this.isKw('every') && this.isKeywordUse('every')) {
      e = this.everyExpr();
    } else {
      const term = this.infixExpr();
      e = { kind: 'term', term, negated, with: [], loc: start.loc };
    }
    if (negated) e.negated = true;
    while (this.isKeywordUse('with')) e.with.push(this.withMod());
    return e;
  }

  private withMod(): With {
    const at = this.next().loc;
    const target = this.term();
    if (!this.isIdent('as')) this.fail('expected as');
    this.next();
    const value = this.orTerm(false);
    return { target, value, loc: at };
  }

  private someExpr(): Expr {
    const at = this.next().loc;
    const first = this.orTerm(false);
    const vars: Term[] = [first];
    if (this.isOp(',') && !this.lineBreak()) {
      this.next();
      vars.push(this.orTerm(false));
      while (this.isOp(',')) {
        this.next();
        vars.push(this.orTerm(false));
      }
    }
    if (this.isKw('in')) {
      this.next();
      if (vars.length > 2) this.fail('some … in takes one or two variables', at);
      const domain = this.orTerm(false);
      return vars.length === 2
        ? { kind: 'somein', key: vars[0]!, value: vars[1]!, domain, loc: at, with: [], negated: false }
        : { kind: 'somein', key: null, value: vars[0]!, domain, loc: at, with: [], negated: false };
    }
    // `some x in xs` written with the membership already parsed as part of the term.
    if (
      vars.length === 1 &&
      first.type === 'call' &&
      first.fn[0] === 'internal' &&
      first.fn[1] === 'member_2'
    )
      return {
        kind: 'somein',
        key: null,
        value: first.args[0]!,
        domain: first.args[1]!,
        loc: at,
        with: [],
        negated: false,
      };
    for (const v of vars) if (v.type !== 'var') this.fail('expected a variable after some', v.loc);
    return { kind: 'some', vars, loc: at, with: [], negated: false };
  }

  private everyExpr(): Expr {
    const at = this.next().loc;
    const first = this.arithTerm(false);
    let key: Term | null = null;
    let value = first;
    if (this.isOp(',')) {
      this.next();
      key = first;
      value = this.arithTerm(false);
    }
    if (!this.isKw('in')) this.fail('expected in after every variables');
    this.next();
    const domain = this.orTerm(false);
    const body = this.braceBody();
    for (const t of [key, value]) if (t && t.type !== 'var') this.fail('every takes variables', t.loc);
    return { kind: 'every', key, value, domain, body, loc: at, with: [], negated: false };
  }

  /** An expression-level term: assignment and unification bind weakest. */
  private infixExpr(): Term {
    const start = this.tok;
    let lhs = this.inTerm(false);
    // `k, v in xs` at the expression level.
    if (this.isOp(',') && !this.lineBreak() && this.nl) {
      this.next();
      const value = this.relationTerm(false);
      if (!this.isKw('in')) this.fail('expected in');
      this.next();
      const domain = this.relationTerm(false);
      lhs = {
        type: 'call',
        fn: ['internal', 'member_3'],
        args: [lhs, value, domain],
        loc: start.loc,
        infix: 'in',
      };
    }
    if ((this.isOp(':=') || this.isOp('=')) && !this.lineBreak()) {
      const op = this.next().text;
      const rhs = this.inTerm(false);
      return {
        type: 'call',
        fn: [op === ':=' ? 'assign' : 'eq'],
        args: [lhs, rhs],
        loc: start.loc,
        infix: op,
      };
    }
    return lhs;
  }

  /** A term as used in a rule head value or a with value: no assignment. */
  private exprTerm(): Term {
    return this.inTerm(false);
  }

  private inTerm(noOr: boolean): Term {
    return this.inChain(this.relationTerm(noOr), noOr);
  }

  private inChain(first: Term, noOr: boolean): Term {
    let lhs = first;
    while (this.isKw('in') && !this.lineBreak()) {
      const at = this.next().loc;
      const rhs = this.relationTerm(noOr);
      lhs = { type: 'call', fn: ['internal', 'member_2'], args: [lhs, rhs], loc: at, infix: 'in' };
    }
    return lhs;
  }

  private binary(ops: Record<string, string>, sub: (noOr: boolean) => Term, noOr: boolean): Term {
    let lhs = sub(noOr);
    for (;;) {
      const t = this.tok;
      if (t.kind !== 'op' || !(t.text in ops) || this.lineBreak()) return lhs;
      if (noOr && t.text === '|') return lhs;
      this.next();
      const rhs = sub(noOr);
      lhs = { type: 'call', fn: [ops[t.text]!], args: [lhs, rhs], loc: lhs.loc, infix: t.text };
    }
  }

  private relationTerm(noOr: boolean): Term {
    return this.binary(
      { '==': 'equal', '!=': 'neq', '<': 'lt', '<=': 'lte', '>': 'gt', '>=': 'gte' },
      (n) => this.orTerm(n),
      noOr,
    );
  }
  private orTerm(noOr: boolean): Term {
    return this.binary({ '|': 'or' }, (n) => this.andTerm(n), noOr);
  }
  private andTerm(noOr: boolean): Term {
    return this.binary({ '&': 'and' }, (n) => this.arithTerm(n), noOr);
  }
  private arithTerm(noOr: boolean): Term {
    return this.binary({ '+': 'plus', '-': 'minus' }, (n) => this.factorTerm(n), noOr);
  }
  private factorTerm(noOr: boolean): Term {
    return this.binary({ '*': 'mul', '/': 'div', '%': 'rem' }, () => this.unaryTerm(), noOr);
  }
  private unaryTerm(): Term {
    if (this.isOp('-')) {
      const at = this.next();
      if (
        this.tok.kind === 'number' &&
        this.tok.loc.col === at.loc.col + 1 &&
        this.tok.loc.row === at.loc.row
      ) {
        const t = this.next();
        return this.suffixes({ type: 'number', value: -Number(t.text), raw: `-${t.text}`, loc: at.loc });
      }
      const operand = this.unaryTerm();
      return {
        type: 'call',
        fn: ['minus'],
        args: [{ type: 'number', value: 0, raw: '0', loc: at.loc }, operand],
        loc: at.loc,
        infix: '-',
      };
    }
    return this.term();
  }

  /** A primary term with its reference and call suffixes. */
  term(): Term {
    const t = this.tok;
    let base: Term;
    switch (t.kind) {
      case 'number':
        this.next();
        base = { type: 'number', value: Number(t.text), raw: t.text, loc: t.loc };
        break;
      case 'string':
      case 'rawstring':
        this.next();
        base = { type: 'string', value: t.value!, loc: t.loc };
        break;
      case 'template':
        this.next();
        base = this.template(t);
        break;
      case 'ident':
        this.next();
        // Any name followed by `.` heads a reference, even a keyword: `default.foo`, `false.x`.
        if (this.isOp('.') && !this.tok.nl) base = { type: 'var', name: t.text, loc: t.loc };
        else if (t.text === 'null') base = { type: 'null', loc: t.loc };
        else if (t.text === 'true' || t.text === 'false')
          base = { type: 'boolean', value: t.text === 'true', loc: t.loc };
        else {
          if (reserved.includes(t.text) || this.keywords.has(t.text))
            this.fail(`unexpected ${t.text} keyword`, t.loc);
          base = { type: 'var', name: t.text, loc: t.loc };
        }
        break;
      case 'op':
        if (t.text === '[') base = this.arrayOrCompr();
        else if (t.text === '{') base = this.braceTerm();
        else if (t.text === '(') {
          this.next();
          base = this.nested(false, () => {
            const first = this.relationTerm(false);
            if (this.isOp(',')) {
              this.next();
              const value = this.relationTerm(false);
              if (!this.isKw('in')) this.fail('expected in');
              this.next();
              const domain = this.relationTerm(false);
              return this.inChain(
                {
                  type: 'call',
                  fn: ['internal', 'member_3'],
                  args: [first, value, domain],
                  loc: first.loc,
                  infix: 'in',
                },
                false,
              );
            }
            return this.inChain(first, false);
          });
          this.expectOp(')');
        } else this.fail(`unexpected ${this.describe(t)}`);
        break;
      default:
        this.fail(`unexpected ${this.describe(t)}`);
    }
    return this.suffixes(base!);
  }

  private suffixes(base: Term): Term {
    let term = base;
    for (;;) {
      const t = this.tok;
      if (this.isOp('.') && !t.nl) {
        const name = this.peek();
        if (name.kind !== 'ident') this.fail('expected a name after .', name.loc);
        this.next();
        this.next();
        term = appendRef(term, { type: 'string', value: name.text, loc: name.loc });
      } else if (this.isOp('[') && !t.nl) {
        this.next();
        const index = this.nested(false, () => this.inTerm(false));
        this.expectOp(']');
        term = appendRef(term, index);
      } else if (this.isOp('(') && !t.nl) {
        const fn = refStrings(term);
        if (!fn) this.fail('illegal call', t.loc);
        this.next();
        const args = this.nested(false, () => this.termList(')'));
        term = { type: 'call', fn: fn!, args, loc: term.loc };
      } else return term;
    }
  }

  private termList(close: string): Term[] {
    const items: Term[] = [];
    while (!this.isOp(close)) {
      items.push(this.inTerm(false));
      if (this.isOp(',')) this.next();
      else if (!this.isOp(close)) this.fail(`expected , or ${close} but found ${this.describe(this.tok)}`);
    }
    this.expectOp(close);
    return items;
  }

  private arrayOrCompr(): Term {
    const open = this.next();
    return this.nested(false, () => {
      if (this.isOp(']')) {
        this.next();
        return { type: 'array', items: [], loc: open.loc } as Term;
      }
      const first = this.inTerm(true);
      if (this.isOp('|')) {
        this.next();
        const body = this.nested(true, () => this.bodyUntil(']'));
        this.expectOp(']');
        if (body.length === 0) this.fail('empty comprehension body', open.loc);
        return { type: 'arraycompr', head: first, body, loc: open.loc } as Term;
      }
      const items = [first];
      while (this.isOp(',')) {
        this.next();
        if (this.isOp(']')) break;
        items.push(this.inTerm(false));
      }
      this.expectOp(']');
      return { type: 'array', items, loc: open.loc } as Term;
    });
  }

  private braceTerm(): Term {
    const open = this.next();
    return this.nested(false, () => {
      if (this.isOp('}')) {
        this.next();
        return { type: 'object', items: [], loc: open.loc } as Term;
      }
      const first = this.inTerm(true);
      if (this.isOp(':')) {
        this.next();
        const value = this.inTerm(true);
        if (this.isOp('|')) {
          this.next();
          const body = this.nested(true, () => this.bodyUntil('}'));
          this.expectOp('}');
          return { type: 'objectcompr', key: first, value, body, loc: open.loc } as Term;
        }
        const items: [Term, Term][] = [[first, value]];
        while (this.isOp(',')) {
          this.next();
          if (this.isOp('}')) break;
          const k = this.inTerm(false);
          this.expectOp(':');
          items.push([k, this.inTerm(false)]);
        }
        this.expectOp('}');
        return { type: 'object', items, loc: open.loc } as Term;
      }
      if (this.isOp('|')) {
        this.next();
        const body = this.nested(true, () => this.bodyUntil('}'));
        this.expectOp('}');
        return { type: 'setcompr', head: first, body, loc: open.loc } as Term;
      }
      const items = [first];
      while (this.isOp(',')) {
        this.next();
        if (this.isOp('}')) break;
        items.push(this.inTerm(false));
      }
      this.expectOp('}');
      return { type: 'set', items, loc: open.loc } as Term;
    });
  }

  private template(t: Token): Term {
    const parts: (string | Term)[] = [];
    for (const p of t.parts ?? []) {
      if (p.kind === 'text') parts.push(p.text);
      else {
        const sub = new Parser(p.source, this.file, this.version);
        sub.keywords = this.keywords;
        const term = sub.nested(false, () => sub.inTerm(false));
        if (sub.tok.kind !== 'eof') sub.fail(`unexpected ${sub.describe(sub.tok)} in template expression`);
        parts.push(term);
      }
    }
    return { type: 'template', parts, loc: t.loc };
  }
}

function appendRef(term: Term, index: Term): Term {
  if (term.type === 'ref') return { ...term, path: [...term.path, index] };
  return { type: 'ref', head: term, path: [index], loc: term.loc };
}

/** `a.b.c` as ["a","b","c"], or null when the term is not a plain dotted name. */
export function refStrings(term: Term): string[] | null {
  if (term.type === 'var') return [term.name];
  if (term.type !== 'ref' || term.head.type !== 'var') return null;
  const out = [term.head.name];
  for (const p of term.path) {
    if (p.type !== 'string') return null;
    out.push(p.value);
  }
  return out;
}
