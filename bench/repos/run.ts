// What making an app's repository costs at registration (modules/repos/repo-store.ts: `git init` and one
// `git fast-import` of the template's files), beside `git init --bare` alone, the least any repository
// costs. The two take turns, one repository each, so the machine's load falls on both alike; each made
// repository must hold the template's files on main or the run fails.
//   npx tsx bench/repos/run.ts [--quick] [--repositories 30] [--template form]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderTemplate } from '../../packages/server/src/modules/catalog/template-files.ts';
import { defaultTemplatesDir } from '../../packages/server/src/modules/catalog/templates.ts';
import { git } from '../../packages/server/src/modules/repos/git.ts';
import { createRepoStore } from '../../packages/server/src/modules/repos/repo-store.ts';
import { BenchFailure, benchArgs, runBench } from '../lib/bench.ts';

const { values, number, command } = benchArgs(
  import.meta.filename,
  "An app's repository as registration makes it, beside a bare `git init`.",
  {
    repositories: { default: '30', quick: '4', help: 'repositories made by each of the two' },
    template: { default: 'form', help: 'the template whose files the repository starts with' },
  },
);

await runBench(async () => {
  const rendered = renderTemplate(defaultTemplatesDir, values.template, {
    name: 'bench-app',
    owner: 'a@example.com',
  });
  if (!rendered) throw new BenchFailure(`no template ${values.template}`);
  const dir = mkdtempSync(join(tmpdir(), 'microapp-bench-repos-'));
  try {
    const store = createRepoStore({
      dir: join(dir, 'repos'),
      hooksDir: join(dir, 'hooks'),
      maxPushBytes: 50 << 20,
    });
    const n = number('repositories');
    let made = 0;
    let bare = 0;
    for (let i = 0; i < n; i++) {
      const id = `app_${String(i).padStart(20, '0')}`;
      let t = performance.now();
      await store.create(id, rendered.files, 'Create bench-app', { name: 'A', email: 'a@example.com' });
      made += performance.now() - t;
      const listed = execFileSync(
        'git',
        [`--git-dir=${store.pathOf(id)}`, 'ls-tree', '-r', '--name-only', 'main'],
        {
          encoding: 'utf8',
        },
      );
      if (listed.trim().split('\n').length !== Object.keys(rendered.files).length)
        throw new BenchFailure(
          `repository ${id} does not hold the template's ${Object.keys(rendered.files).length} files`,
        );
      t = performance.now();
      await git(join(dir, `bare-${i}.git`), [
        'init',
        '--bare',
        '--quiet',
        '--template=',
        join(dir, `bare-${i}.git`),
      ]);
      bare += performance.now() - t;
    }
    console.log(
      `  an app's repository (${Object.keys(rendered.files).length} files)  ${(made / n).toFixed(1)} ms per repository`,
    );
    console.log(`  git init --bare alone (baseline)         ${(bare / n).toFixed(1)} ms per repository`);
    console.log(
      `  an app's repository / a bare init: ${(made / Math.max(0.001, bare)).toFixed(1)}x (${n} each)`,
    );
    console.log(`reproduce with: ${command}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
