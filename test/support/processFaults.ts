/**
 * Records uncaught exceptions and unhandled rejections instead of letting them end the test
 * process, so a suite can assert that the service never crashed (and show what happened if it did).
 */
export function watchProcessFaults(): { faults: string[]; stop(): void } {
  const faults: string[] = [];
  const onException = (err: unknown) => faults.push(`uncaughtException: ${err instanceof Error ? err.stack : String(err)}`);
  const onRejection = (reason: unknown) => faults.push(`unhandledRejection: ${reason instanceof Error ? reason.stack : String(reason)}`);
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
  return {
    faults,
    stop() {
      process.off('uncaughtException', onException);
      process.off('unhandledRejection', onRejection);
    },
  };
}
