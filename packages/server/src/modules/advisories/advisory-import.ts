import { createHash } from 'node:crypto';
import { Unzip, UnzipInflate } from 'fflate';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.ts';
import { AppError } from '../../errors.ts';
import { newId, nowIso } from '../../ids.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import type { Principal } from '../identity/principal.ts';
import { type OsvRecord, unreadableEvents } from './osv-match.ts';

/** How far an advisory upload may expand: OSV's npm snapshot unpacks to a few hundred MB at most. */
export const advisoryZipLimits = { bytes: 512 * 1024 * 1024, entries: 500_000, ratio: 50 };

/**
 * Unzips an upload while counting what it inflates to, entry by entry as the bytes come, and stops at
 * the limits: a zip's own size fields are the uploader's word, so a bomb that lies in them is stopped by
 * what it actually produces.
 */
export function unzipBounded(zip: Uint8Array, limits = advisoryZipLimits): Record<string, Uint8Array> {
  const files: Record<string, Uint8Array> = {};
  let total = 0;
  let entries = 0;
  let problem: string | null = null;
  const unzipper = new Unzip((file) => {
    if (problem) return;
    if (++entries > limits.entries) {
      problem = `it holds more than ${limits.entries} files`;
      return;
    }
    const chunks: Uint8Array[] = [];
    file.ondata = (error, data, final) => {
      if (problem) return;
      if (error) {
        problem = error.message;
        return;
      }
      total += data.length;
      if (total > limits.bytes || (total > 64 * 1024 * 1024 && total > zip.length * limits.ratio)) {
        problem = `it expands past ${Math.round(limits.bytes / 1024 / 1024)} MB or ${limits.ratio} times its size (a compression bomb)`;
        file.terminate();
        return;
      }
      chunks.push(data);
      if (final) files[file.name] = Buffer.concat(chunks);
    };
    try {
      file.start();
    } catch (error) {
      problem = (error as Error).message;
    }
  });
  unzipper.register(UnzipInflate);
  try {
    // In slices: fflate parses every entry a push holds before it returns, one call deeper per entry, so a
    // single push of an archive of 20,000 records overflows the stack.
    const slice = 16 * 1024;
    for (let at = 0; at < zip.length && !problem; at += slice)
      unzipper.push(zip.subarray(at, at + slice), at + slice >= zip.length);
    if (zip.length === 0) unzipper.push(zip, true);
  } catch (error) {
    problem ??= (error as Error).message;
  }
  if (problem) throw new AppError('bad_request', `the upload was refused: ${problem}`);
  if (entries === 0 && zip.length > 0 && !(zip[0] === 0x50 && zip[1] === 0x4b))
    throw new AppError('bad_request', 'the upload is not a readable zip file');
  return files;
}

/** What an import did, record by record. */
export type ImportReport = {
  id: string;
  digest: string;
  /** Records in the data scans now use. */
  records: number;
  mode: 'merge' | 'replace';
  added: number;
  updated: number;
  unchanged: number;
  /** Records the upload holds in an older version (by `modified`) than the data already has: kept as they were. */
  older: number;
  /** Records the upload marks withdrawn (they match nothing from now on). */
  withdrawn: number;
  /** Records of the earlier data the upload did not hold, kept (merge only). */
  kept: number;
  /** What could not be read, and so may match less than it says. */
  warnings: string[];
};

const newer = (a: string | undefined, b: string | undefined) =>
  Boolean(a && b && Date.parse(a) > Date.parse(b));

/**
 * Imports OSV records as a new snapshot. By default it merges: a record of the upload replaces the one
 * with its id unless the one already held was modified later; every record the upload does not hold is
 * kept, so importing one updated record never drops the others. With `replace`, the upload is the whole
 * data (a full snapshot). Records whose versions are not valid semver are read the way OSV's tooling reads
 * them ("1.0" is 1.0.0); what still cannot be read is reported in `warnings`.
 */
export async function importOsv(
  db: Kysely<Database>,
  audit: Pick<AuditService, 'record'>,
  principal: Principal,
  zip: Uint8Array,
  ctx: AuditContext,
  options: { replace: boolean },
): Promise<ImportReport> {
  const files = unzipBounded(zip);
  const uploaded = new Map<string, { record: OsvRecord; text: string; packages: string[] }>();
  const warnings: string[] = [];
  for (const [name, bytes] of Object.entries(files)) {
    if (!name.endsWith('.json')) continue;
    let record: OsvRecord;
    try {
      record = JSON.parse(Buffer.from(bytes).toString('utf8')) as OsvRecord;
    } catch {
      throw new AppError('validation_failed', `${name} is not valid JSON`);
    }
    if (typeof record?.id !== 'string')
      throw new AppError('validation_failed', `${name} is not an OSV record (no id)`);
    const packages = [
      ...new Set(
        (record.affected ?? [])
          .filter((a) => a.package?.ecosystem === 'npm' && a.package.name)
          .map((a) => a.package!.name!),
      ),
    ];
    for (const bad of unreadableEvents(record))
      if (warnings.length < 50)
        warnings.push(`${record.id}: version "${bad}" is not a version; that bound is ignored`);
    const held = uploaded.get(record.id);
    if (!held || newer(record.modified, held.record.modified))
      uploaded.set(record.id, { record, text: JSON.stringify(record), packages });
  }
  if (uploaded.size === 0) throw new AppError('validation_failed', 'the upload holds no OSV JSON records');
  const digest = `sha256:${createHash('sha256').update(zip).digest('hex')}`;
  const id = newId('snapshot');
  const report: ImportReport = {
    id,
    digest,
    records: 0,
    mode: options.replace ? 'replace' : 'merge',
    added: 0,
    updated: 0,
    unchanged: 0,
    older: 0,
    withdrawn: 0,
    kept: 0,
    warnings,
  };
  await db.transaction().execute(async (trx) => {
    const previous = await trx
      .selectFrom('advisory_snapshots')
      .select('id')
      .orderBy('imported_at', 'desc')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    // What the current data holds for the uploaded ids: the record text, to compare and date.
    const before = new Map<string, string>();
    const ids = [...uploaded.keys()];
    if (previous)
      for (let i = 0; i < ids.length; i += 500) {
        const rows = await trx
          .selectFrom('advisories')
          .select(['osv_id', 'record'])
          .where('snapshot_id', '=', previous.id)
          .where('osv_id', 'in', ids.slice(i, i + 500))
          .execute();
        for (const r of rows) before.set(r.osv_id, r.record);
      }
    await trx
      .insertInto('advisory_snapshots')
      .values({ id, digest, records: 0, imported_by: principal.email, imported_at: nowIso() })
      .execute();
    const rows: { snapshot_id: string; osv_id: string; package: string; record: string }[] = [];
    for (const [osvId, u] of uploaded) {
      const old = before.get(osvId);
      if (old !== undefined && !options.replace) {
        const oldRecord = JSON.parse(old) as OsvRecord;
        if (newer(oldRecord.modified, u.record.modified)) {
          report.older++;
          continue; // the held record is kept with the others below
        }
        if (old === u.text) report.unchanged++;
        else report.updated++;
      } else if (old !== undefined) {
        if (old === u.text) report.unchanged++;
        else report.updated++;
      } else report.added++;
      if (u.record.withdrawn) report.withdrawn++;
      for (const p of u.packages) rows.push({ snapshot_id: id, osv_id: osvId, package: p, record: u.text });
    }
    for (let i = 0; i < rows.length; i += 500)
      await trx
        .insertInto('advisories')
        .values(rows.slice(i, i + 500))
        .execute();
    if (previous && !options.replace) {
      // Everything else the current data holds comes along, in one statement.
      await trx
        .insertInto('advisories')
        .columns(['snapshot_id', 'osv_id', 'package', 'record'])
        .expression((eb) =>
          eb
            .selectFrom('advisories as o')
            .select((s) => [s.val(id).as('snapshot_id'), 'o.osv_id', 'o.package', 'o.record'])
            .where('o.snapshot_id', '=', previous.id)
            .where(
              'o.osv_id',
              'not in',
              eb.selectFrom('advisories as n').select('n.osv_id').where('n.snapshot_id', '=', id),
            ),
        )
        .execute();
    }
    const counted = await trx
      .selectFrom('advisories')
      .select((eb) => eb.fn.count<number>('osv_id').distinct().as('n'))
      .where('snapshot_id', '=', id)
      .executeTakeFirstOrThrow();
    report.records = Number(counted.n);
    report.kept = options.replace ? 0 : report.records - new Set(rows.map((r) => r.osv_id)).size;
    await trx
      .updateTable('advisory_snapshots')
      .set({ records: report.records })
      .where('id', '=', id)
      .execute();
    await audit.record(trx, ctx, {
      action: 'advisories.imported',
      targetType: 'advisory_snapshot',
      target: id,
      summary: {
        digest,
        mode: report.mode,
        records: report.records,
        added: report.added,
        updated: report.updated,
        unchanged: report.unchanged,
        older: report.older,
        withdrawn: report.withdrawn,
        kept: report.kept,
        warnings: warnings.length,
      },
    });
  });
  return report;
}
