import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compile, coverageReport, RegoError } from '../src/index.ts';

const seed = `package microapp.network

blacklisted_domains = {"suspicious.example.com", "unsafe.example.org"}

deny[msg] {
  input.request.method == "deploy"
  host := input.request.host
  blacklisted_domains[host]
  msg = sprintf("deployment denied: host %v is blacklisted", [host])
}
`;

describe('the seed policy works as written (v0 syntax)', () => {
  const policy = compile([{ file: 'network.rego', source: seed }]);
  test('denies a deploy to a blacklisted host, with its message', () => {
    const deny = policy.evaluate('microapp/network/deny', {
      input: { request: { method: 'deploy', host: 'suspicious.example.com' } },
    });
    assert.deepEqual(deny, ['deployment denied: host suspicious.example.com is blacklisted']);
  });
  test('allows the bank API', () => {
    assert.deepEqual(
      policy.evaluate('data.microapp.network.deny', {
        input: { request: { method: 'deploy', host: 'api.bank.example.com' } },
      }),
      [],
    );
  });
  test('v1 syntax without `if` is refused in a v1 module', () => {
    assert.throws(
      () => compile([{ file: 'x.rego', source: seed }], { regoVersion: 'v1' }),
      /`if` keyword is required/,
    );
  });
});

describe('errors say where', () => {
  test('parse errors carry file:line:column and a caret line', () => {
    try {
      compile([{ file: 'bad.rego', source: 'package p\n\nallow if {\n  input.x ==\n}\n' }]);
      assert.fail('should not compile');
    } catch (error) {
      assert.ok(error instanceof RegoError);
      assert.equal(error.code, 'rego_parse_error');
      assert.match(error.message, /^bad\.rego:5:1: rego_parse_error: /);
      assert.match(error.message, /\n\t\}\n\t\^/);
    }
  });
  test('recursion is a compile error', () => {
    assert.throws(
      () => compile([{ file: 'r.rego', source: 'package p\n\na if b\n\nb if a\n' }]),
      (e: RegoError) => e.code === 'rego_recursion_error',
    );
  });
  test('a builtin called with the wrong number of arguments is a compile error', () => {
    assert.throws(
      () => compile([{ file: 'a.rego', source: 'package p\n\nx := count([1], 2, 3)\n' }]),
      /count: arity mismatch/,
    );
  });
  test('an unsafe variable is a compile error that names it', () => {
    assert.throws(
      () =>
        compile([
          { file: 'u.rego', source: 'package p\n\nimport rego.v1\n\nallow if {\n\tinput.n > limit\n}\n' },
        ]),
      (e: RegoError) =>
        e.code === 'rego_unsafe_var_error' &&
        /var limit is unsafe/.test(e.message) &&
        /u\.rego:6:/.test(e.message),
    );
    assert.throws(
      () =>
        compile([
          { file: 'h.rego', source: 'package p\n\nimport rego.v1\n\nnames contains n if input.ok\n' },
        ]),
      /var n is unsafe/,
    );
  });
  test('an unknown function is a compile error', () => {
    assert.throws(
      () => compile([{ file: 'f.rego', source: 'package p\n\nx := nope(1)\n' }]),
      /undefined function nope/,
    );
  });
  test('conflicting complete rules are an evaluation error', () => {
    const p = compile([{ file: 'c.rego', source: 'package p\n\nx := 1\n\nx := 2\n' }]);
    assert.throws(
      () => p.evaluate('data.p.x'),
      (e: RegoError) => e.code === 'eval_conflict_error',
    );
  });
});

describe('evaluation budget: hostile policies and inputs fail fast with a clear error', () => {
  test('a chain of functions nested deeper than the limit', () => {
    const fns = Array.from({ length: 600 }, (_, i) => `f${i}(x) := f${i + 1}(x) + 1`).join('\n');
    const p = compile([
      { file: 'deep.rego', source: `package deep\n\n${fns}\nf600(x) := x\n\nr := f0(1)\n` },
    ]);
    assert.throws(
      () => p.evaluate('data.deep.r'),
      (e: RegoError) => e.code === 'eval_budget_error' && /nested/.test(e.message),
    );
  });
  test('a huge numbers.range is refused before it is built', () => {
    const p = compile([
      { file: 'range.rego', source: 'package r\n\nn := count(numbers.range(1, 1000000000))\n' },
    ]);
    const started = Date.now();
    assert.throws(
      () => p.evaluate('data.r.n'),
      (e: RegoError) => e.code === 'eval_budget_error' && /numbers.range/.test(e.message),
    );
    assert.ok(Date.now() - started < 1000);
  });
  test('a loop over a large input stops at the time budget', () => {
    const p = compile([
      {
        file: 'loop.rego',
        source:
          'package l\n\nimport rego.v1\n\npairs := count([1 | some a in input.items; some b in input.items; a == b])\n',
      },
    ]);
    const items = Array.from({ length: 20_000 }, (_, i) => `item-${i}`);
    const started = Date.now();
    assert.throws(
      () => p.evaluate('data.l.pairs', { input: { items }, budget: { maxMillis: 300 } }),
      (e: RegoError) => e.code === 'eval_budget_error',
    );
    assert.ok(Date.now() - started < 3000, `stopped after ${Date.now() - started} ms`);
  });
});

describe('language features', () => {
  test('with replaces input, data and functions', () => {
    const p = compile([
      {
        file: 'w.rego',
        source: `package w
import rego.v1
limit := data.config.limit
over if input.n > limit
double(x) := x * 2
d := double(input.n)
t1 if over with input.n as 11 with data.config.limit as 10
t2 if not over with input.n as 9 with data.config.limit as 10
t3 if d == 7 with input.n as 1 with double as 7
`,
      },
    ]);
    for (const t of ['t1', 't2', 't3']) assert.equal(p.evaluate(`data.w.${t}`), true, t);
  });
  test('print output is captured by the caller', () => {
    const lines: string[] = [];
    const p = compile([
      {
        file: 'p.rego',
        source: 'package p\nimport rego.v1\nx if { print("hello", input.who, input.missing) }\n',
      },
    ]);
    p.evaluate('data.p.x', { input: { who: 'alice' }, print: (m) => lines.push(m) });
    assert.deepEqual(lines, ['hello alice <undefined>']);
  });
  test('the test runner reports pass, fail and error like opa test', () => {
    const p = compile([
      {
        file: 't.rego',
        source: 'package t\nimport rego.v1\ntest_ok if 1 == 1\ntest_bad if 1 == 2\ntest_err if 1 / 0 == 1\n',
      },
    ]);
    const results = Object.fromEntries(p.test({ strictBuiltinErrors: true }).map((r) => [r.name, r.outcome]));
    assert.deepEqual(results, { test_ok: 'pass', test_bad: 'fail', test_err: 'error' });
  });
  test('regular expressions follow RE2, not JavaScript', () => {
    const p = compile([
      {
        file: 'r.rego',
        source: 'package r\nm := regex.match(`\\p{Greek}+`, "αβγ")\nbad := regex.match("(?=x)", "x")\n',
      },
    ]);
    assert.equal(p.evaluate('data.r.m'), true);
    assert.equal(
      p.evaluate('data.r.bad'),
      undefined,
      'lookahead is not RE2: the builtin errs and the rule is undefined',
    );
  });
  test('integers beyond 2^53 stay exact', () => {
    const p = compile([{ file: 'b.rego', source: 'package b\nx := 9007199254740993 + 2\n' }]);
    assert.equal(p.query('y := data.b.x; z := format_int(y, 10)')[0]?.z, '9007199254740995');
  });
});

describe('a package across files, as OPA merges it', () => {
  test('a policy and its tests in two files of one package: the tests use its rules by their bare names', () => {
    const policy = compile([
      {
        file: 'network.rego',
        source: `package microapp.network
import rego.v1
deny contains msg if {
  input.request.host == "suspicious.example.com"
  msg := "host suspicious.example.com is blocked"
}
`,
      },
      {
        file: 'network_test.rego',
        source: `package microapp.network
import rego.v1
test_blocked if deny["host suspicious.example.com is blocked"] with input as {"request": {"host": "suspicious.example.com"}}
test_others_pass if count(deny) == 0 with input as {"request": {"host": "api.bank.example.com"}}
`,
      },
    ]);
    const results = policy.test({ data: {} });
    assert.deepEqual(
      results.map((r) => `${r.name}:${r.outcome}`),
      ['test_blocked:pass', 'test_others_pass:pass'],
    );
  });

  test('a function in one file, a default in another, the tests in a third', () => {
    const policy = compile([
      {
        file: 'fn.rego',
        source: 'package acme.access\nimport rego.v1\nis_admin(user) if "admin" in user.roles\n',
      },
      {
        file: 'rules.rego',
        source:
          'package acme.access\nimport rego.v1\ndefault allow := false\nallow if is_admin(input.user)\n',
      },
      {
        file: 'access_test.rego',
        source: `package acme.access
import rego.v1
test_admin if allow with input as {"user": {"roles": ["admin"]}}
test_default if not allow with input as {"user": {"roles": []}}
test_function if is_admin({"roles": ["admin"]})
`,
      },
    ]);
    assert.deepEqual(
      policy.test({ data: {} }).map((r) => `${r.name}:${r.outcome}`),
      ['test_admin:pass', 'test_default:pass', 'test_function:pass'],
    );
    assert.equal(
      policy.evaluate('data.acme.access.allow', { input: { user: { roles: [] } }, data: {} }),
      false,
    );
  });

  test('conflicts are still found across files: two defaults for one rule', () => {
    assert.throws(
      () =>
        compile([
          { file: 'a.rego', source: 'package p\ndefault allow := false\n' },
          { file: 'b.rego', source: 'package p\ndefault allow := true\n' },
        ]),
      /multiple default rules data\.p\.allow found/,
    );
  });
});

describe('bodies run in the order their variables allow, as OPA reorders them', () => {
  const run = (source: string, input?: unknown) =>
    compile([{ file: 'r.rego', source: `package r\n${source}` }]).evaluate('data.r.p', { input });

  test('a variable used before the expression that binds it', () => {
    assert.equal(run('p if { y == x + 1; x = 2; y = 3 }'), true);
    assert.equal(run('p := y if { y = x + 1; x = input.a }', { a: 41 }), 42);
    assert.equal(run('p if { not q[x]; x = 1 }\nq contains 2'), true);
  });

  test('inside comprehensions in a head, and inside every', () => {
    assert.deepEqual(run('p := [y | y = x * 2; x = input.xs[_]]', { xs: [1, 2] }), [2, 4]);
    assert.equal(run('p if { every v in input.xs { v < lim; lim = 10 } }', { xs: [1, 2] }), true);
  });

  test('a reference that binds what another argument of the same call reads', () => {
    assert.equal(run('p := foo if { some foo; foo == input.foos[foo] }', { foos: [3, 1, 7] }), 1);
  });

  test('what no order can bind is still reported as unsafe', () => {
    assert.throws(() => run('p if { z == 1 }'), /var z is unsafe/);
  });
});

describe('the test runner, as opa test runs tests', () => {
  test('a test defined twice is two tests, test_x and test_x#01, each judged on its own', () => {
    const policy = compile([
      {
        file: 't_test.rego',
        source: 'package t\nimport rego.v1\ntest_x if 1 == 1\ntest_x if 1 == 2\ntodo_test_y if false\n',
      },
    ]);
    const results = policy.test().map((r) => [r.name, r.outcome]);
    assert.deepEqual(results, [
      ['test_x', 'pass'],
      ['test_x#01', 'fail'],
      ['todo_test_y', 'skip'],
    ]);
  });

  test('coverage names the rows a test reached and the rows it did not', () => {
    const policy = compile([
      {
        file: 'p.rego',
        source: 'package p\nimport rego.v1\nallow if {\n  input.x == 1\n}\nf(a) := a + 1\n',
      },
      {
        file: 'p_test.rego',
        source: 'package p\nimport rego.v1\ntest_allow if allow with input as {"x": 1}\n',
      },
    ]);
    const covered = new Set<string>();
    assert.equal(policy.test({ coverage: covered })[0]?.outcome, 'pass');
    const report = coverageReport(policy.modules, covered);
    assert.deepEqual(report.files['p.rego']?.covered, [{ start: { row: 3 }, end: { row: 4 } }]);
    assert.deepEqual(report.files['p.rego']?.not_covered, [{ start: { row: 6 }, end: { row: 6 } }]);
    assert.equal(report.files['p.rego']?.coverage, 66.67);
  });
});
