import { useState } from 'react';
import { type ApiError, upload } from '../api.ts';
import { Outcome } from '../ui.tsx';

/** What an import did (the server merges it into the data already held). */
type ImportReport = {
  records: number;
  digest: string;
  added: number;
  updated: number;
  unchanged: number;
  withdrawn: number;
  older: number;
  kept: number;
  warnings: string[];
};

const n = (count: number, one: string) => `${count.toLocaleString()} ${one}${count === 1 ? '' : 's'}`;

/** "Imported 1 record (sha256:…): 1 added, …; 2 records in all." */
export function importSummary(r: ImportReport): string {
  const received = r.added + r.updated + r.unchanged + r.older;
  const parts = [
    `${r.added} added`,
    `${r.updated} updated`,
    ...(r.unchanged ? [`${r.unchanged} unchanged`] : []),
    ...(r.withdrawn ? [`${r.withdrawn} withdrawn`] : []),
    ...(r.older ? [`${r.older} older than the data held, kept as they were`] : []),
  ];
  return `Imported ${n(received, 'record')} (${r.digest.slice(0, 19)}…): ${parts.join(', ')}; ${n(r.records, 'record')} in all.${
    r.warnings.length ? ` ${n(r.warnings.length, 'warning')}: ${r.warnings.slice(0, 3).join('; ')}` : ''
  }`;
}

/** An admin imports OSV data: merged by id and modified date into what the platform holds. */
export function AdvisoryImport({ onImported }: { onImported: () => void }) {
  const [file, setFile] = useState<File | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [done, setDone] = useState<string | null>(null);
  return (
    <form
      aria-label="Import advisory data"
      onSubmit={async (e) => {
        e.preventDefault();
        if (!file) return;
        setBusy(true);
        setError(null);
        setDone(null);
        try {
          const r = await upload<ImportReport>('/api/v1/advisories', file, 'application/zip');
          setDone(importSummary(r));
          onImported();
        } catch (err) {
          setError(err as ApiError);
        } finally {
          setBusy(false);
        }
      }}
    >
      <div className="field">
        <label htmlFor="osv-zip">OSV data (.zip)</label>
        <input
          id="osv-zip"
          type="file"
          accept=".zip,application/zip"
          onChange={(e) => setFile(e.target.files?.[0] ?? null)}
        />
      </div>
      <Outcome error={error} said={done} />
      <button type="submit" disabled={!file || busy}>
        {busy ? 'Importing…' : 'Import'}
      </button>
    </form>
  );
}
