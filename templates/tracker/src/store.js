// The tracker's items, kept in SQLite (better-sqlite3) in the app's own storage (MICROAPP_DATA_DIR): the
// file survives restarts and upgrades. Every change records who made it and when.
import Database from 'better-sqlite3';

export const statuses = ['open', 'in progress', 'done'];

/** Schema changes, applied in order; `user_version` says how many ran, so an upgrade runs only the new ones. */
const migrations = [
  `create table items (
     id integer primary key,
     title text not null,
     notes text not null default '',
     status text not null default 'open',
     created_by text not null,
     created_at text not null,
     updated_by text not null,
     updated_at text not null
   )`,
];

export function openStore(file) {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  const done = db.pragma('user_version', { simple: true });
  for (const [i, sql] of migrations.entries())
    if (i >= done)
      db.transaction(() => {
        db.exec(sql);
        db.pragma(`user_version = ${i + 1}`);
      })();
  const insert = db.prepare(
    'insert into items (title, notes, created_by, created_at, updated_by, updated_at) values (?, ?, ?, ?, ?, ?)',
  );
  const update = db.prepare('update items set status = ?, updated_by = ?, updated_at = ? where id = ?');
  const list = db.prepare('select * from items order by status = \'done\', id desc');
  const one = db.prepare('select * from items where id = ?');
  return {
    add({ title, notes = '' }, by) {
      const now = new Date().toISOString();
      return Number(insert.run(title, notes, by, now, by, now).lastInsertRowid);
    },
    setStatus(id, status, by) {
      if (!statuses.includes(status)) throw new Error(`unknown status ${status}`);
      return update.run(status, by, new Date().toISOString(), id).changes === 1;
    },
    get: (id) => one.get(id) ?? null,
    all: () => list.all(),
    sqliteVersion: () => db.prepare('select sqlite_version() as v').get().v,
    close: () => db.close(),
  };
}

/** The items as CSV (RFC 4180), with cells that a spreadsheet would run as a formula made plain text. */
export function toCsv(items) {
  const cell = (v) => {
    let s = String(v ?? '');
    if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
    return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  const head = ['id', 'title', 'notes', 'status', 'created_by', 'created_at', 'updated_by', 'updated_at'];
  return `${[head.join(','), ...items.map((i) => head.map((k) => cell(i[k])).join(','))].join('\r\n')}\r\n`;
}
