// Types of audit-copy-row.js, which stays plain JavaScript for the verifier's worker threads.
export declare const copyColumns: string;
export declare const column: { id: number; prevHash: number; seq: number; summary: number; hash: number };
export declare function canonicalOf(
  b: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
  at: Int32Array,
): number;
