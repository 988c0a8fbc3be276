// The checked copy is what stands between a build folder that untrusted code ran in and the host-side
// steps: each test plants what a hostile install script or test could, and checks what comes out.
import assert from 'node:assert/strict';
import {
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, beforeEach, describe, test } from 'node:test';
import { checkedCopy, HostileTreeError } from '../src/pipeline/checked-copy.ts';

describe('the checked copy of a build folder', () => {
  const root = mkdtempSync(join(tmpdir(), 'microapp-checked-'));
  let n = 0;
  let tree: string;
  beforeEach(() => {
    tree = join(root, `tree-${++n}`);
    mkdirSync(join(tree, 'build/Release/obj.target'), { recursive: true });
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test('a file linked twice inside the folder (what node-gyp builds) is copied under both names, unlinked', () => {
    writeFileSync(join(tree, 'build/Release/obj.target/addon.node'), 'binary');
    linkSync(join(tree, 'build/Release/obj.target/addon.node'), join(tree, 'build/Release/addon.node'));
    const out = join(root, `out-${n}`);
    checkedCopy(tree, out);
    for (const name of ['build/Release/addon.node', 'build/Release/obj.target/addon.node']) {
      assert.equal(readFileSync(join(out, name), 'utf8'), 'binary');
      assert.equal(statSync(join(out, name)).nlink, 1, `${name} is a file of its own in the copy`);
    }
  });

  test('a hard link to a file outside the folder stops the copy', () => {
    writeFileSync(join(root, `host-secret-${n}`), 'not the app’s');
    linkSync(join(root, `host-secret-${n}`), join(tree, 'build/Release/addon.node'));
    assert.throws(
      () => checkedCopy(tree, join(root, `out-${n}`)),
      (e: Error) =>
        e instanceof HostileTreeError &&
        /build\/Release\/addon\.node is a hard link to a file outside the app folder \(2 names, 1 inside\)/.test(
          e.message,
        ),
    );
  });

  test('a symbolic link out of the folder stops the copy; one inside it stays a link', () => {
    writeFileSync(join(tree, 'index.js'), 'ok');
    symlinkSync('../index.js', join(tree, 'build/index.js'));
    checkedCopy(tree, join(root, `out-${n}`));
    symlinkSync('/etc/passwd', join(tree, 'passwd'));
    assert.throws(() => checkedCopy(tree, join(root, `out-${n}-b`)), /passwd is a link to \/etc\/passwd/);
  });
});
