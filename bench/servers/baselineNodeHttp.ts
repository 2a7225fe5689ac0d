/** Baseline (A): bare node:http answering a fixed small JSON. The HTTP ceiling on this machine. */
import { createServer } from 'node:http';
import { FIXED_BODY, listenAndAnnounce } from './announce.ts';

const headers = { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(FIXED_BODY)) };
await listenAndAnnounce(
  createServer((_req, res) => {
    res.writeHead(200, headers);
    res.end(FIXED_BODY);
  }),
);
