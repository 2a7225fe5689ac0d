/**
 * The OTLP collector the telemetry scenarios export to: the three OTLP/gRPC collector services on a
 * loopback port, accepting every export without decoding it (an empty message is a valid
 * protobuf response), so what the benchmark measures is the service's cost, not a collector's.
 */
import * as grpc from '@grpc/grpc-js';

const EMPTY = Buffer.alloc(0);
const server = new grpc.Server();
let exports = 0;
for (const path of [
  '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
  '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
  '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
]) {
  const definition: grpc.ServiceDefinition = {
    Export: {
      path,
      requestStream: false,
      responseStream: false,
      requestSerialize: (bytes: Buffer) => bytes,
      requestDeserialize: (bytes: Buffer) => bytes,
      responseSerialize: () => EMPTY,
      responseDeserialize: (bytes: Buffer) => bytes,
    },
  };
  server.addService(definition, {
    Export: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      exports++;
      callback(null, EMPTY);
    },
  });
}
const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
);
const stop = () => server.tryShutdown(() => process.exit(0));
process.on('disconnect', stop);
process.on('SIGTERM', stop);
process.on('message', (message: { type?: string }) => {
  if (message?.type === 'stop') stop();
  if (message?.type === 'stats') process.send!({ type: 'stats', exports });
});
process.send!({ type: 'ready', port });
