import type { Database } from '../../db/database.ts';
import type { Context } from '../serviceContext.ts';
import { Forbidden } from '../../errors.ts';
import type { HandlerResult } from '../handler.ts';
import type { VerifiedUser } from '../../userAccess/userAccess.ts';
import { asksOneRowByKey } from '../../postgrest/dialectInput.ts';
import { isProbe, isScan, type Requester } from './admission.ts';
import type { CompiledOperation } from './compiledOperation.ts';
import type { ValidatedInput } from './inputValidator.ts';

/** A dialect read of one object by its whole key (single()): a batched point lookup, not a scan. */
function isPointRead(operation: CompiledOperation, input: ValidatedInput): boolean {
  const key = operation.validator.dialectKey;
  return key !== undefined && asksOneRowByKey(input.query, key);
}

/** Calls an operation's handler on the right connections; see createOperationRunner. */
export type RunOperation = (
  operation: CompiledOperation,
  input: ValidatedInput,
  user: VerifiedUser | undefined,
  /** Who asks (lib/http/routing/admission.ts): scanning reads take turns by caller for their share of the pool. */
  who?: Requester,
) => Promise<HandlerResult>;

/**
 * Calls the handler: as the verified user on their own connections when the operation runs as
 * the caller, on a read replica when the operation allows it and one is configured, else with
 * the context as it is. A permission refusal names the operation (and the user). A scanning read's
 * statements that the planner estimates heavy first take one of the connections heavy scans may
 * hold (DB_SCAN_SHARE, DB_SCAN_COST: see Database.forScan), or are shed.
 */
export function createOperationRunner(ctx: Context): RunOperation {
  const { userAccess, scanShare } = ctx;
  const runOn = async (operation: CompiledOperation, input: ValidatedInput, user: VerifiedUser | undefined, scanBy: string | undefined) => {
    const scanning = (db: Database) => (scanShare && scanBy !== undefined ? db.forScan(scanShare, scanBy) : db);
    try {
      if (!user) {
        const { readRouting } = ctx;
        if (operation.readFrom === 'replica' && readRouting) {
          return await readRouting.run(operation.operationId, input, (db) => operation.handler(input, { ...ctx, db: scanning(db) }));
        }
        return await operation.handler(input, scanBy === undefined ? ctx : { ...ctx, db: scanning(ctx.db) });
      }
      // A verified user comes only from an authenticator in LAKEBASE_ACCESS=user, which has user access.
      if (!userAccess) throw new Error(`${operation.operationId} has a verified user but LAKEBASE_ACCESS is not user`);
      return await userAccess.withDatabase(user, (db) => operation.handler(input, { ...ctx, db }));
    } catch (err) {
      if (err instanceof Forbidden && err.operation === undefined) throw err.forOperation(operation.operationId, user?.email);
      throw err;
    }
  };
  return (operation, input, user, who) => {
    // From here the request mostly waits on the database: its turn goes to others (fairQueue.ts).
    who?.waiting();
    // A lone caller's scans may use the whole light share; anyone else reaching the database ends
    // that (a load balancer's health probes do not).
    if (who && !isProbe(operation)) scanShare?.seen(who.key);
    const scans = scanShare !== null && isScan(operation) && !isPointRead(operation, input);
    return runOn(operation, input, user, scans ? (who?.key ?? '') : undefined);
  };
}
