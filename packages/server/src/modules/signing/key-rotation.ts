import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.ts';
import { forbidden } from '../../errors.ts';
import type { AuditContext, AuditService } from '../audit/audit-service.ts';
import { hasRole, type Principal } from '../identity/principal.ts';
import type { KeyStore } from './key-store.ts';

/** Admins rotate the platform's signing key; the retired key keeps verifying what it signed. */
export function createKeyRotation(deps: {
  db: Kysely<Database>;
  audit: Pick<AuditService, 'record'>;
  keys: Pick<KeyStore, 'rotate'>;
}) {
  async function rotate(principal: Principal, reason: string, ctx: AuditContext) {
    if (!hasRole(principal, 'admin')) throw forbidden('only platform admins rotate the signing key');
    return deps.db.transaction().execute(async (trx) => {
      const result = await deps.keys.rotate(trx);
      await deps.audit.record(trx, ctx, {
        action: 'signing_key.rotated',
        targetType: 'signing_key',
        target: result.current,
        reason,
        summary: { retired: result.previous },
      });
      return { current: result.current, retired: result.previous };
    });
  }
  return { rotate };
}

export type KeyRotation = ReturnType<typeof createKeyRotation>;
